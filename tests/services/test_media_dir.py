"""`media_dir`: media in a folder of its own (a mount every node of a cluster shares), owner-only, used everywhere."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import StoreError
from kuzet.services.container import build_services
from tests.conftest import PASSWORD

pytestmark = pytest.mark.store


def test_media_go_to_the_configured_folder(tmp_path: Path, faces_dir: Path) -> None:
    shared = tmp_path / "mnt" / "kuzet-media"
    svc = build_services(tmp_path / "data", KuzetConfig.model_validate({"media_dir": str(shared)}))
    try:
        admin = svc.users.init_admin("admin", PASSWORD)
        op = svc.users.add(admin, "op", PASSWORD, ["operator"])
        photo = faces_dir / "face_recognition_examples" / "knn_train_obama_obama.jpg"
        svc.gallery.enroll(op, "Barack Obama", [photo], consent="form 3")
        svc.analysis.analyze(op, str(faces_dir / "face_recognition_examples" / "knn_test_obama1.jpg"), camera="c1")
        stored = [p for p in shared.rglob("*") if p.is_file()]
        assert stored  # the enrolment photo (encrypted) at least
        assert not (tmp_path / "data" / "media").exists() or not any((tmp_path / "data" / "media").rglob("*.*"))
        assert stat.S_IMODE(shared.stat().st_mode) == 0o700
        assert svc.ctx.media.root == shared
    finally:
        svc.close()


def test_a_media_dir_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the media folder .*file/media") as info:
        build_services(tmp_path / "data", KuzetConfig.model_validate({"media_dir": str(blocker / "media")}))
    assert "media_dir" in info.value.hint
