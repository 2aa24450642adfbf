"""A running camera's gallery kept current through the change feed: only what changed is read and decrypted.

Real enrolments (face photos through the embedder), real approvals, expiries and watchlist decisions, on both
engines; the updated gallery is compared with a full reload after every step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from kuzet.config.models import KuzetConfig
from kuzet.core.types import User
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.recognize.gallery import NumpyGallery
from kuzet.services.container import Services, build_services
from kuzet.services.session import AnalysisSession
from tests.conftest import PASSWORD, utc_today

pytestmark = pytest.mark.store
EX = "face_recognition_examples"
CONFIG = {"cameras": [{"name": "gate", "source": "rtsp://127.0.0.1:1/gate", "purpose": "staff access at the gate"}]}


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


def _same(a: NumpyGallery, b: NumpyGallery) -> None:
    """The two galleries hold the same people with the same templates (in any order)."""

    def content(g: NumpyGallery) -> dict[tuple[str, int], list[bytes]]:
        out: dict[tuple[str, int], list[bytes]] = {}
        for row, owner in zip(g.templates, g.owners, strict=True):
            p = g.people[owner]
            out.setdefault((p.kind, p.person_id), []).append(np.round(row, 5).tobytes())
        return {k: sorted(v) for k, v in out.items()}

    assert content(a) == content(b)
    assert {(p.kind, p.person_id, p.name) for p in a.people} == {(p.kind, p.person_id, p.name) for p in b.people}


def _gallery(session: AnalysisSession) -> NumpyGallery:
    """The gallery a live face camera matches against."""
    faces = session.pipeline.faces
    assert faces is not None, "the camera runs no face pipeline"
    assert isinstance(faces.gallery, NumpyGallery), "the camera's gallery is not the in-memory exact search"
    return faces.gallery


def _users(svc: Services) -> dict[str, User]:
    admin = svc.users.init_admin("admin", PASSWORD)
    roles = {"op": "operator", "ap": "approver", "req": "requester"}
    return {"admin": admin} | {k: svc.users.add(admin, k, PASSWORD, [r]) for k, r in roles.items()}


def test_a_running_camera_applies_only_what_changed(tmp_path: Path, faces_dir: Path) -> None:
    clock = Clock()
    svc = build_services(tmp_path / "data", KuzetConfig.model_validate(CONFIG), clock=clock)
    try:
        u = _users(svc)
        obama = svc.gallery.enroll(
            u["op"], "Barack Obama", [faces_dir / EX / "knn_train_obama_obama.jpg"], consent="form 1"
        )
        svc.gallery.approve(u["ap"], obama.identity.person_id, reason="consent form checked")
        session = AnalysisSession(svc.analysis, u["admin"], camera="gate", source="rtsp://gate", live=True)
        assert session.refresh_gallery() is False  # nothing changed since it loaded
        assert [p.name for p in _gallery(session).people] == ["Barack Obama"]

        # an approval reaches the camera, and only the new person's template is decrypted
        biden = svc.gallery.enroll(
            u["op"],
            "Joe Biden",
            [faces_dir / EX / "knn_train_biden_biden.jpg"],
            consent="form 2",
            expires=utc_today() + timedelta(5),
        )
        assert session.refresh_gallery() is False  # pending: matches nobody yet (nothing in the feed)
        svc.gallery.approve(u["ap"], biden.identity.person_id, reason="consent form checked")
        decrypted = []
        real = svc.ctx.cipher.decrypt

        def counting(blob: bytes, *, context: str) -> bytes:
            decrypted.append(context)
            return real(blob, context=context)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(svc.ctx.cipher, "decrypt", counting)
            assert session.refresh_gallery() is True
        assert decrypted == [f"person:{biden.identity.person_id}"]
        gallery = _gallery(session)
        _same(gallery, svc.gallery.load("gate"))
        assert {p.name for p in gallery.people} == {"Barack Obama", "Joe Biden"}

        # a watchlist entry approved (four eyes) joins as a watchlist identity with its category's threshold
        req = WatchlistRequest("wanted", "Lin-Manuel Miranda", "wanted-person", "court-order", "2-345/2026",
                               "Almaty city court", utc_today() + timedelta(60))  # fmt: skip
        entry = svc.watchlists.request(u["req"], req, faces_dir / EX / "lin-manuel-miranda.png")
        svc.watchlists.approve(u["ap"], entry, reason="court order checked")
        assert session.refresh_gallery() is True
        _same(_gallery(session), svc.gallery.load("gate"))
        kinds = {p.kind for p in _gallery(session).people}
        assert kinds == {"person", "watchlist"}

        # an expiry leaves the camera's gallery at the next look
        clock.at += timedelta(days=10)
        assert svc.gallery.expire() == [biden.identity.person_id]
        assert session.refresh_gallery() is True
        gallery = _gallery(session)
        _same(gallery, svc.gallery.load("gate"))
        assert "Joe Biden" not in {p.name for p in gallery.people}
        assert session.refresh_gallery() is False
    finally:
        svc.close()


def test_a_camera_behind_a_trimmed_feed_reloads_everything(tmp_path: Path, faces_dir: Path) -> None:
    svc = build_services(tmp_path / "data", KuzetConfig.model_validate(CONFIG))
    try:
        u = _users(svc)
        session = AnalysisSession(svc.analysis, u["admin"], camera="gate", source="rtsp://gate", live=True)
        for name, photo in (("Barack Obama", "knn_train_obama_obama.jpg"), ("Joe Biden", "knn_train_biden_biden.jpg")):
            r = svc.gallery.enroll(u["op"], name, [faces_dir / EX / photo], consent="form 1")
            svc.gallery.approve(u["ap"], r.identity.person_id, reason="consent form checked")
        with svc.uow.tx() as w:
            w.changes.trim(keep=1)  # the camera last saw change 0: the first change is gone
            assert w.changes.oldest() > 1
        assert session.refresh_gallery() is True
        _same(_gallery(session), svc.gallery.load("gate"))
        assert len(_gallery(session).people) == 2
    finally:
        svc.close()
