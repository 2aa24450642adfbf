"""End-to-end through the service layer: enrolment, analysis, events, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kuzet.app import Kuzet, resolve_data_dir
from kuzet.core.errors import EnrolmentError, InputError, PermissionDenied
from kuzet.core.types import User
from tests.conftest import add_user, enrol, share_models

pytestmark = pytest.mark.store

EXAMPLES = "face_recognition_examples"


def _media_files(svc: Kuzet) -> list[Path]:
    """Media an analysis wrote (enrolment photos, kept for the approver, are not the analysis's)."""
    enrolment = svc.data_dir / "media" / "enrolment"
    return [p for p in (svc.data_dir / "media").rglob("*") if p.is_file() and not p.is_relative_to(enrolment)]


@pytest.mark.slow
def test_hamilton_clip_reports_lin_manuel_and_no_wrong_identity(
    service: Kuzet, operator: User, faces_dir: Path, video_dir: Path
) -> None:
    enrol(service, operator, "Lin-Manuel Miranda", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])
    enrol(service, operator, "Alex Lacamoire", [faces_dir / EXAMPLES / "alex-lacamoire.png"])
    result = service.analyze(operator, str(video_dir / "short_hamilton_clip.mp4"), camera="stage")
    identities = [e.identity for e in result.events]
    assert "Lin-Manuel Miranda" in identities
    # Everyone else on stage and in the audience is a stranger: no track may carry another identity.
    assert set(identities) == {"Lin-Manuel Miranda"}
    lin = max(result.events, key=lambda e: e.end - e.start)
    assert lin.end - lin.start >= 5.0  # he is on stage for most of the 10 s clip
    assert result.stats.frames == 275
    assert result.stats.unknown_tracks >= 3  # strangers are counted ...
    # ... but only matches leave media: a redacted snapshot and the encrypted original, per event.
    assert len(_media_files(service)) == 2 * len(result.events)
    for e in result.events:
        assert 0.0 <= e.start <= e.end <= 10.1
        assert service.media.path(e.snapshot).is_file()
    assert service.events(operator, camera="stage") == sorted(result.events, key=lambda e: -e.event_id)
    # Recognition ran on best shots, not on every face of every frame.
    assert result.stats.embedded_shots <= 3 * result.stats.tracks < result.stats.faces


def test_enrolment_refuses_no_face_and_many_faces(
    service: Kuzet, operator: User, faces_dir: Path, tmp_path: Path
) -> None:
    import numpy as np
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(blank)
    good = faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    with pytest.raises(EnrolmentError, match="no face found in .*wall.png"):
        enrol(service, operator, "Someone", [good, blank])
    with pytest.raises(EnrolmentError, match="2 faces found in .*two_people.jpg") as info:
        enrol(service, operator, "Someone", [faces_dir / EXAMPLES / "two_people.jpg"])
    assert "crop" in info.value.hint
    with pytest.raises(EnrolmentError, match="cannot enrol from"):
        enrol(service, operator, "Someone", [tmp_path / "missing.jpg"])
    with pytest.raises(EnrolmentError, match="invalid name"):
        enrol(service, operator, "  ", [good])
    assert service.people(operator) == []  # a refused enrolment stores nothing, not even the good photo


def test_enrolment_refuses_faces_too_poor_for_a_reliable_template(
    service: Kuzet, operator: User, faces_dir: Path, tmp_path: Path
) -> None:
    """The measure recognition gates tracks on: a photo no camera track could be matched from makes no template."""
    import cv2

    good = faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    picture = cv2.imread(str(good))
    blurred, dark = tmp_path / "blurred.png", tmp_path / "dark.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(picture, (0, 0), 6))
    cv2.imwrite(str(dark), (picture * 0.12).astype("uint8"))
    with pytest.raises(EnrolmentError, match=r"face in blurred.png is too poor .*: blurred \(quality 0\.0\d") as info:
        enrol(service, operator, "Lin-Manuel Miranda", [good, blurred])
    assert "sharp, well-lit, frontal" in info.value.hint
    with pytest.raises(EnrolmentError, match=r"face in dark.png is too poor .*dark"):
        enrol(service, operator, "Lin-Manuel Miranda", [dark])
    assert service.people(operator) == []  # nothing stored, not even the good photo
    assert enrol(service, operator, "Lin-Manuel Miranda", [good]).identity.name == "Lin-Manuel Miranda"
    # a person asking what kuzet holds about them is never turned away for a poor photo
    assert service.services.gallery.face_template(blurred, check_quality=False)[0]["dlib-resnet"].shape == (128,)


def test_a_photo_swapped_while_it_is_described_leaves_the_digest_of_what_was_described(
    service: Kuzet, faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An insider swaps the file just after it is decoded: the stored sha256 must still be of the described photo.

    Enrolment and watchlist requests store the photo's digest beside its template (duplicates, pending copies, and
    the link to the photo an approver or court saw); a digest of other bytes would tie the template to a photo it
    was not made from.
    """
    import hashlib
    import io

    from PIL import Image as PILImage

    import kuzet.ingest.images as images

    described, other = faces_dir / EXAMPLES / "lin-manuel-miranda.png", faces_dir / EXAMPLES / "alex-lacamoire.png"
    photo = tmp_path / "request.png"
    photo.write_bytes(described.read_bytes())
    real_open = images.PILImage.open

    def open_then_swap(fp: io.BytesIO | Path) -> PILImage.Image:
        opened = real_open(fp)
        photo.write_bytes(other.read_bytes())  # the swap, as soon as the first read is done
        return opened

    monkeypatch.setattr(images.PILImage, "open", open_then_swap)
    gallery = service.services.gallery
    vectors, _, sha = gallery.face_template(photo)
    monkeypatch.undo()
    assert photo.read_bytes() == other.read_bytes()  # the swap happened
    assert sha == hashlib.sha256(described.read_bytes()).hexdigest()
    expected, _, _ = gallery.face_template(described)
    for model, vector in vectors.items():
        assert float(vector @ expected[model]) > 0.999, model  # and the template is of that same photo


def test_enrol_several_photos_and_duplicates(service: Kuzet, operator: User, faces_dir: Path) -> None:
    photos = [faces_dir / EXAMPLES / n for n in ("knn_train_obama_obama.jpg", "knn_train_obama_obama2.jpg")]
    first = enrol(service, operator, "Barack Obama", [*photos, photos[0]])
    assert first.added == 2 and first.skipped_duplicates == 1  # the same photo twice is enrolled once
    with pytest.raises(EnrolmentError, match="already enrolled"):
        service.enroll(operator, "Barack Obama", photos[:1], consent="form 2")
    (person,) = service.people(operator)
    assert person.templates == 2 and person.status == "approved" and person.photos == 3


def test_still_photo_is_recognised(service: Kuzet, operator: User, faces_dir: Path) -> None:
    enrol(service, operator, "Barack Obama", [faces_dir / EXAMPLES / "knn_train_obama_obama.jpg"])
    enrol(service, operator, "Joe Biden", [faces_dir / EXAMPLES / "knn_train_biden_biden.jpg"])
    result = service.analyze(operator, str(faces_dir / EXAMPLES / "knn_test_obama_and_biden.jpg"), camera="desk")
    assert sorted(e.identity for e in result.events) == ["Barack Obama", "Joe Biden"]


def test_corrupt_video_stores_nothing(
    service: Kuzet, operator: User, faces_dir: Path, video_dir: Path, tmp_path: Path
) -> None:
    enrol(service, operator, "Lin-Manuel Miranda", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])
    data = (video_dir / "car-detection.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        service.analyze(operator, str(cut))
    assert service.events(operator) == []
    assert _media_files(service) == []


@pytest.mark.sqlite_only  # on PostgreSQL the store is named by KUZET_DATABASE_URL, not by the data directory
def test_two_data_directories_do_not_interfere(tmp_path: Path, faces_dir: Path, service: Kuzet, operator: User) -> None:
    enrol(service, operator, "Lin-Manuel Miranda", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])
    other = share_models(Kuzet(tmp_path / "other"), service.face_detector, service.face_embedder)
    try:
        other.init_admin("admin", "another long password")
        other_operator = other.add_user(
            other.login("admin", "another long password")[0], "olga", "x" * 12, ["operator"]
        )
        assert other.people(other_operator) == []
        assert (other.data_dir / "kuzet.db").is_file()
        assert not (other.data_dir / "keys").samefile(service.data_dir / "keys")
    finally:
        other.close()


def test_roles_are_enforced(service: Kuzet, faces_dir: Path, video_dir: Path) -> None:
    reviewer = add_user(service, "rita", "reviewer")
    with pytest.raises(PermissionDenied, match="rita may not enrol people"):
        enrol(service, reviewer, "X", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])
    with pytest.raises(PermissionDenied, match="may not run analyses"):
        service.analyze(reviewer, str(video_dir / "car-detection.mp4"))
    with pytest.raises(PermissionDenied, match="may not add users"):
        service.add_user(reviewer, "eve", "x" * 12, ["admin"])


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUZET_HOME", str(tmp_path / "env-home"))
    assert resolve_data_dir(None) == tmp_path / "env-home"
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("KUZET_HOME")
    assert "kuzet" in str(resolve_data_dir(None))
    assert os.environ.get("KUZET_HOME") is None
