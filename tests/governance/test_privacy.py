"""Redaction, retention, encryption at rest, subject access and the transparency report."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from kuzet.app import Kuzet
from kuzet.core.errors import InputError, NotFoundError, PermissionDenied, PolicyRefusal, StoreError
from kuzet.core.geometry import iou_matrix
from kuzet.core.types import User
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.governance.redaction import Redactor, redact_video
from kuzet.governance.report import render_html, write_report
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.ingest import load_image
from kuzet.store.crypto import ENV_KEY, is_encrypted
from tests.conftest import add_user, enrol, utc_today
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store

EXAMPLES = "face_recognition_examples"


class NoPlates:
    """A plate finder that finds nothing (the real one is tested through `kuzet redact` below)."""

    def detect(self, image: np.ndarray) -> object:
        from kuzet.core.types import Detections

        return Detections.empty(with_landmarks=False)


def _two_faces_close(faces_dir: Path, out: Path) -> Path:
    """Lin-Manuel Miranda with Joe Biden's face right beside him, inside the snapshot's margin."""
    lin = load_image(faces_dir / EXAMPLES / "lin-manuel-miranda.png", max_pixels=10**8)
    biden = load_image(faces_dir / EXAMPLES / "knn_train_biden_biden.jpg", max_pixels=10**8)
    lin_face = cv2.resize(lin[100:540, 220:580], (240, 290))
    h, w = biden.shape[:2]
    biden_face = cv2.resize(biden[: h // 2, w // 4 : 3 * w // 4], (84, 100))
    canvas = np.full((480, 720, 3), 200, np.uint8)
    canvas[60:350, 130:370] = lin_face
    canvas[130:230, 372:456] = biden_face
    Image.fromarray(canvas).save(out)
    return out


@pytest.fixture
def team(service: Kuzet) -> dict[str, User]:
    return {
        "op": add_user(service, "olga", "operator"),
        "aud": add_user(service, "timur", "auditor"),
        "req": add_user(service, "rustam", "requester"),
        "appr": add_user(service, "aigul", "approver"),
        "rev": add_user(service, "marat", "reviewer"),
    }


def test_stored_snapshot_hides_every_other_face(
    service: Kuzet, team: dict[str, User], faces_dir: Path, tmp_path: Path, centerface: CenterFaceDetector
) -> None:
    scene = _two_faces_close(faces_dir, tmp_path / "scene.png")
    enrol(service, team["op"], "Lin-Manuel Miranda", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])
    result = service.analyze(team["op"], str(scene), camera="desk")
    (event,) = result.events
    redacted = load_image(service.media.path(event.snapshot), max_pixels=10**8)
    (original_jpeg,) = service.media_export(
        team["aud"], "event", event.event_id, unredacted=True, justification="test of redaction"
    )
    original = cv2.cvtColor(cv2.imdecode(np.frombuffer(original_jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert original.shape == redacted.shape
    in_original = centerface.detect(original)
    in_redacted = centerface.detect(redacted)
    assert len(in_original) == 2  # the snapshot's margin really does take in the second face ...
    assert len(in_redacted) == 1  # ... which redaction hides, so the detector no longer finds it
    subject = in_original.boxes[np.argmax(in_original.boxes[:, 0] * -1)]  # Lin is on the left
    assert iou_matrix(in_redacted.boxes, subject[None])[0, 0] > 0.5
    # The original is encrypted on disk; the redacted copy is what any viewer sees.
    con = raw_db(service.data_dir)
    (original_rel,) = con.execute("SELECT original FROM events").fetchone()
    con.close()
    assert is_encrypted(service.media.path(original_rel).read_bytes())
    with pytest.raises(PermissionDenied, match="may not see unredacted"):
        service.media_export(team["op"], "event", event.event_id, unredacted=True, justification="curious about it")
    service.access_grant(
        add_user(service, "boss", "admin"), "olga", hours=1, justification="court asked for the original"
    )
    assert service.media_export(
        team["op"], "event", event.event_id, unredacted=True, justification="court order 77/2026"
    )
    later = datetime.now(UTC) + timedelta(hours=2)
    service.now = lambda: later  # the grant has run out
    with pytest.raises(PermissionDenied, match="may not see unredacted"):
        service.media_export(team["op"], "event", event.event_id, unredacted=True, justification="court order 77/2026")
    actions = [e.action for e in service.audit_log(team["aud"])]
    assert actions.count("media.export") == 2 and actions.count("media.export_refused") == 2


def test_redact_video_hides_faces_in_every_frame(
    faces_dir: Path, tmp_path: Path, centerface: CenterFaceDetector
) -> None:
    image = load_image(faces_dir / EXAMPLES / "two_people.jpg", max_pixels=10**8)
    image = cv2.resize(image, (640, 376))
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 376, "yuv420p"
        for i in range(12):
            frame = np.roll(image, 4 * i, axis=1)  # the people move
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert len(centerface.detect(image)) == 2
    red = tmp_path / "red.mp4"
    stats = redact_video(clip, red, Redactor(centerface, NoPlates()))
    assert stats.frames == 12
    with av.open(str(red)) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    assert len(frames) == 12
    assert all(len(centerface.detect(np.ascontiguousarray(f))) == 0 for f in frames)


def test_database_alone_yields_no_template(
    service: Kuzet, team: dict[str, User], faces_dir: Path, tmp_path: Path
) -> None:
    enrol(service, team["op"], "Lin-Manuel Miranda", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])
    gallery = service._load_gallery()
    vector = gallery.templates[0].astype("<f4").tobytes()
    con = raw_db(service.data_dir)
    if not con.postgres:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the main file, as a backup would take it
        db_bytes = (service.data_dir / "kuzet.db").read_bytes()
        assert vector not in db_bytes and vector[:64] not in db_bytes
    (blob,) = con.execute("SELECT vector FROM face_templates").fetchone()
    con.close()
    blob = bytes(blob)
    assert is_encrypted(blob)
    assert len(blob) > 512 and vector[:16] not in blob
    # A thief's copy: the database without the keys folder (on PostgreSQL: the same database, another folder).
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    if not con.postgres:
        shutil.copy(service.data_dir / "kuzet.db", stolen / "kuzet.db")
    thief = Kuzet(stolen)
    with pytest.raises(StoreError, match="no data key"):
        thief._load_gallery()
    thief.close()


def test_wrong_key_is_a_clear_error(
    service: Kuzet, team: dict[str, User], faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(service, team["op"], "Lin-Manuel Miranda", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])
    import base64

    monkeypatch.setenv(ENV_KEY, base64.b64encode(b"k" * 32).decode())
    other = Kuzet(service.data_dir)
    with pytest.raises(StoreError, match="not in KUZET_DATA_KEY"):
        other._load_gallery()
    other.close()


def test_key_rotation_keeps_everything_readable(service: Kuzet, team: dict[str, User], faces_dir: Path) -> None:
    enrol(service, team["op"], "Barack Obama", [faces_dir / EXAMPLES / "knn_train_obama_obama.jpg"])
    result = service.analyze(team["op"], str(faces_dir / EXAMPLES / "knn_test_obama1.jpg"))
    old_key = service.cipher.active
    before = service._load_gallery().templates.copy()
    new_key = service.keys_rotate(add_user(service, "boss", "admin"))
    assert new_key != old_key
    fresh = Kuzet(service.data_dir)
    assert list(fresh.cipher.keys) == [new_key]  # the old key is gone from the ring
    fresh.face_embedder = service.face_embedder
    assert np.array_equal(fresh._load_gallery().templates, before)
    assert fresh.media_export(
        team["aud"], "event", result.events[0].event_id, unredacted=True, justification="after rotation"
    )
    fresh.close()


def test_a_hold_on_a_record_that_does_not_exist_is_refused(service: Kuzet, team: dict[str, User]) -> None:
    """A mistyped id must not look like a hold: the real record would be left to retention."""
    for kind in ("event", "alert", "person", "watchlist", "violation"):
        with pytest.raises(NotFoundError, match=f"no {kind} 999 to hold"):
            service.hold_add(team["aud"], "CASE-7", kind, 999, reason="evidence in case 7")
    assert service.holds(team["aud"]) == []
    assert not service.audit_log(team["aud"], action="hold.add")


def test_purge_removes_what_is_due_and_nothing_else(service: Kuzet, team: dict[str, User], faces_dir: Path) -> None:
    enrol(service, team["op"], "Barack Obama", [faces_dir / EXAMPLES / "knn_train_obama_obama.jpg"])
    old = service.analyze(team["op"], str(faces_dir / EXAMPLES / "knn_test_obama1.jpg")).events[0]
    held = service.analyze(team["op"], str(faces_dir / EXAMPLES / "test_obama3.jpg")).events[0]
    service.hold_add(team["aud"], "CASE-9", "event", held.event_id, reason="evidence in case 9")
    # 31 days later (events are kept 30 days by default) a new event arrives, then the purge runs.
    later = datetime.now(UTC) + timedelta(days=31)
    service.now = lambda: later
    con = raw_db(service.data_dir)
    # The two events were made 31 days before "later" (stored in SQLAlchemy's SQLite format).
    con.execute("UPDATE events SET created_at = ?", ((later - timedelta(days=31)).strftime("%Y-%m-%d %H:%M:%S.%f"),))
    con.commit()
    con.close()
    files_before = set((service.data_dir / "media" / "snapshots").rglob("*.jpg"))
    # This analysis starts the scheduled purge (the last one was more than 24 hours ago) ...
    fresh = service.analyze(team["op"], str(faces_dir / EXAMPLES / "knn_train_obama_obama2.jpg")).events[0]
    # ... and an explicit run afterwards finds nothing more to do.
    report = service.retention_run(team["aud"])
    assert report.events == 0 and report.kept_on_hold == 1
    remaining = {e.event_id for e in service.events(team["aud"])}
    assert remaining == {held.event_id, fresh.event_id}
    assert not service.media.path(old.snapshot).exists() and not service.media.path(old.original).exists()
    assert service.media.path(held.snapshot).exists() and service.media.path(fresh.snapshot).exists()
    files_after = set((service.data_dir / "media" / "snapshots").rglob("*.jpg"))
    assert files_before - files_after == {service.media.path(old.snapshot)}
    purges = service.audit_log(team["aud"], action="retention.purge")
    assert sum(int(p.details["events"] or 0) for p in purges) == 1
    assert purges[-1].details["kept_on_hold"] == 1
    # Released, the held event goes at the next purge.
    service.hold_release(team["aud"], "CASE-9", reason="case closed")
    assert service.retention_run(team["aud"]).events == 1
    assert {e.event_id for e in service.events(team["aud"])} == {fresh.event_id}


def test_media_size_cap_purges_oldest_first(
    service: Kuzet, team: dict[str, User], faces_dir: Path, tmp_path: Path
) -> None:
    from kuzet.governance.policy import load_policy

    enrol(service, team["op"], "Barack Obama", [faces_dir / EXAMPLES / "knn_train_obama_obama.jpg"])
    first = service.analyze(team["op"], str(faces_dir / EXAMPLES / "knn_test_obama1.jpg")).events[0]
    second = service.analyze(team["op"], str(faces_dir / EXAMPLES / "test_obama3.jpg")).events[0]
    import importlib.resources

    default = importlib.resources.files("kuzet.governance").joinpath("default_policy.yaml").read_text()
    total = service.media.total_bytes()
    first_size = service.media.path(first.snapshot).stat().st_size + service.media.path(first.original).stat().st_size
    cap_mb = (total - first_size // 2) / 2**20
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(default.replace("media_cap_mb: 10240", f"media_cap_mb: {max(1, int(cap_mb))}"))
    if cap_mb < 1:  # media this small cannot be capped in whole megabytes; pad it
        pad = service.data_dir / "media" / "recordings-pad.bin"
        pad.write_bytes(b"\0" * (2**20 + first_size // 2))
    service.policy = load_policy(policy_file)
    report = service.retention_run(team["aud"])
    assert report.over_cap >= 1
    remaining = {e.event_id for e in service.events(team["aud"])}
    assert first.event_id not in remaining  # the oldest went first
    assert report.over_cap == 1 or second.event_id not in remaining


def test_subject_search_and_erase(service: Kuzet, team: dict[str, User], faces_dir: Path) -> None:
    enrol(service, team["op"], "Barack Obama", [faces_dir / EXAMPLES / "knn_train_obama_obama.jpg"])
    enrol(service, team["op"], "Joe Biden", [faces_dir / EXAMPLES / "knn_train_biden_biden.jpg"])
    e1 = service.analyze(team["op"], str(faces_dir / EXAMPLES / "knn_test_obama1.jpg")).events[0]
    service.analyze(team["op"], str(faces_dir / EXAMPLES / "knn_test_obama_and_biden.jpg"))
    with pytest.raises(PolicyRefusal, match="justification"):
        service.subject_search(team["aud"], faces_dir / EXAMPLES / "obama-480p.jpg", justification="")
    report = service.subject_search(
        team["aud"], faces_dir / EXAMPLES / "obama-480p.jpg", justification="access request SAR-1"
    )
    assert [p["name"] for p in report["people"]] == ["Barack Obama"]
    events = report["events"]
    assert isinstance(events, list) and len(events) == 2 and e1.event_id in {e["id"] for e in events}
    held = events[1]["id"]
    service.hold_add(team["aud"], "CASE-1", "event", held, reason="needed for case 1")
    result = service.subject_erase(
        team["aud"], faces_dir / EXAMPLES / "obama-480p.jpg", justification="erasure request ER-1"
    )
    assert result["events_erased"] == 1 and result["people_erased"] == 0
    assert any("legal hold" in k for k in result["kept"])
    left = service.events(team["aud"])
    assert {e.identity for e in left} == {"Barack Obama", "Joe Biden"} and len(left) == 2
    with pytest.raises(PolicyRefusal, match="written reason"):
        service.hold_release(team["aud"], "CASE-1", reason="")  # finding 9: released with an empty reason
    service.hold_release(team["aud"], "CASE-1", reason="case 1 closed by the court")
    result = service.subject_erase(
        team["aud"], faces_dir / EXAMPLES / "obama-480p.jpg", justification="erasure request ER-1"
    )
    assert result["people_erased"] == 1
    assert {e.identity for e in service.events(team["aud"])} == {"Joe Biden"}
    assert [p.identity.name for p in service.people(team["aud"])] == ["Joe Biden"]
    actions = [e.action for e in service.audit_log(team["aud"])]
    assert actions.count("subject.search") == 1 and actions.count("subject.erase") == 2


def test_transparency_report_counts_a_scripted_scenario(
    service: Kuzet, team: dict[str, User], faces_dir: Path, tmp_path: Path
) -> None:
    photo = faces_dir / EXAMPLES / "knn_train_obama_obama.jpg"
    req = WatchlistRequest(
        list_name="wanted",
        subject_name="Person A",
        category="wanted-person",
        legal_basis="court-order",
        reference="2-1/2026",
        authority="City court",
        expires=utc_today() + timedelta(days=30),
    )
    entry = service.watchlist_request(team["req"], req, photo)
    service.watchlist_approve(team["appr"], entry, reason="court order checked")
    for bad in [{"note": "opposition blogger"}, {"category": "religion-or-belief"}, {"reference": ""}]:
        with pytest.raises(PolicyRefusal):
            service.watchlist_request(team["req"], _replace(req, **bad), photo)
    a1 = service.analyze(team["op"], str(faces_dir / EXAMPLES / "knn_test_obama1.jpg"), camera="gate-1").alert_ids
    a2 = service.analyze(team["op"], str(faces_dir / EXAMPLES / "test_obama3.jpg"), camera="gate-2").alert_ids
    assert len(a1) == 1 and len(a2) == 1
    second_reviewer = add_user(service, "saule", "reviewer")
    service.review(team["rev"], a1[0], "confirm", reason="same person")
    service.review(second_reviewer, a1[0], "confirm", reason="agree")
    service.review(team["rev"], a2[0], "reject", reason="different ears")
    today = utc_today()
    rep = service.transparency_report(team["aud"], today - timedelta(days=1), today)
    assert rep.entries_by_category == {"wanted-person": 1}
    assert rep.entries_by_legal_basis == {"court-order": 1}
    assert rep.refusals_by_reason == {
        "prohibited label": 1,
        "prohibited category": 1,
        "missing or unaccepted legal basis": 1,
    }
    assert rep.alerts == {"created": 2, "confirmed": 1, "rejected": 1, "pending": 0}
    assert rep.false_match_rate == pytest.approx(0.5)
    assert {c["camera"] for c in rep.cameras} == {"gate-1", "gate-2"}
    assert rep.checkpoint["tree_size"] >= 10
    html_text = render_html(rep)
    assert "Person A" not in html_text and "2-1/2026" not in html_text  # aggregates only: no names
    assert "<svg" in html_text and "false-match rate" in html_text
    for suffix in (".html", ".json", ".pdf"):
        out = tmp_path / f"report{suffix}"
        write_report(rep, out)
        assert out.stat().st_size > 500
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((tmp_path / "report.json").read_text())["alerts"]["rejected"] == 1


def _replace(req: WatchlistRequest, **changes: object) -> WatchlistRequest:
    import dataclasses

    return dataclasses.replace(req, **changes)


def test_retention_runs_on_its_own_schedule(service: Kuzet, team: dict[str, User]) -> None:
    assert service.maybe_purge() is not None  # never purged before: due now
    assert service.maybe_purge() is None  # the default interval is 24 hours
    later = datetime.now(UTC) + timedelta(hours=25)
    service.now = lambda: later
    assert service.maybe_purge() is not None
    purges = service.audit_log(team["aud"], action="retention.purge")
    assert len(purges) == 2 and all(p.actor == "system" for p in purges)


def test_refusals_of_privacy_actions_are_audited(service: Kuzet, team: dict[str, User], faces_dir: Path) -> None:
    """Finding 9: refused grants, subject searches and erasures, and holds left no trace in the ledger."""
    photo = faces_dir / EXAMPLES / "obama-480p.jpg"
    admin = add_user(service, "boss", "admin")
    attempts = [
        (lambda: service.access_grant(admin, "olga", hours=4, justification="because"), "access.grant_refused"),
        (
            lambda: service.access_grant(admin, "olga", hours=500, justification="a long enough reason"),
            "access.grant_refused",
        ),
        (
            lambda: service.access_grant(admin, "olga", hours=1e-9, justification="a long enough reason"),
            "access.grant_refused",
        ),
        (
            lambda: service.access_grant(admin, "olga", hours=float("nan"), justification="a long enough reason"),
            "access.grant_refused",
        ),
        (
            lambda: service.access_grant(admin, "boss", hours=4, justification="I want to see for myself"),
            "access.grant_refused",
        ),
        (lambda: service.subject_search(team["aud"], photo, justification="x"), "subject.search_refused"),
        (lambda: service.subject_erase(team["aud"], photo, justification=""), "subject.erase_refused"),
        (lambda: service.hold_add(team["aud"], "", "event", 1, reason="r"), "hold.refused"),
        (lambda: service.hold_release(team["aud"], "CASE-1", reason=" "), "hold.release_refused"),
        (
            lambda: service.access_grant(team["op"], "olga", hours=4, justification="a long enough reason"),
            "permission.denied",
        ),
    ]
    for attempt, action in attempts:
        with pytest.raises((PolicyRefusal, PermissionDenied)):
            attempt()
        assert service.audit_log(team["aud"], action=action), action
    # each refused grant has its own entry: no justification, too long, too short, NaN hours, to oneself
    assert len(service.audit_log(team["aud"], action="access.grant_refused")) == 5


def test_redact_video_also_hides_what_the_camera_adds(tmp_path: Path, centerface: CenterFaceDetector) -> None:
    """A traffic camera's plate places are hidden on every frame of a played or exported recording."""
    import yaml

    from kuzet.config.models import KuzetConfig
    from kuzet.services.media import plate_places

    striped = np.zeros((240, 320, 3), np.uint8)
    striped[:, ::2] = 255  # the detail a plate's characters have
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "0"}
        for _ in range(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(striped, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    red = tmp_path / "red.mp4"
    place = np.asarray([[100, 100, 160, 130]], np.float32)
    redact_video(clip, red, Redactor(centerface, NoPlates()), also_hide=lambda image: place)
    with av.open(str(red)) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    assert len(frames) == 5
    for f in frames:
        assert f[105:125, 105:155].std() < 40 < f[10:40, 10:60].std()  # hidden there, stripes elsewhere

    examples = Path(__file__).resolve().parents[2] / "examples"
    park = KuzetConfig.model_validate(yaml.safe_load((examples / "car-park.yaml").read_text())).cameras[0]
    faces = KuzetConfig.model_validate({"cameras": [{"name": "door", "source": "a.mp4"}]}).cameras[0]
    assert plate_places(faces) is None  # a faces camera hides faces and found plates only
    places = plate_places(park)
    assert places is not None
    rng = np.random.default_rng(7)
    road = rng.integers(50, 70, (432, 768, 3), dtype=np.uint8)
    for _ in range(20):  # the background model learns the empty lane
        assert len(places(road)) == 0
    car = road.copy()
    car[150:300, 290:410] = 200  # a car drives into it
    zones = places(car)
    assert len(zones) and all(z[0] >= 270 and z[2] <= 430 and z[1] >= 130 and z[3] <= 320 for z in zones)


def test_a_subject_search_photo_is_refused_in_the_words_of_a_search(
    service: Kuzet, team: dict[str, User], faces_dir: Path, tmp_path: Path
) -> None:
    """The errors spoke of an enrolment ("an enrolment photo", "the person being enrolled"): nobody was enrolled."""
    two = faces_dir / EXAMPLES / "two_people.jpg"
    with pytest.raises(InputError, match="2 faces found in .*two_people.jpg; the photo must show only the person ask"):
        service.subject_search(team["aud"], two, justification="access request 2026-17")
    blank = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (200, 200, 200)).save(blank)
    with pytest.raises(InputError, match="no face found in .*wall.png") as info:
        service.subject_erase(team["aud"], blank, justification="erasure request 2026-18")
    assert "photo of the person asking" in info.value.hint
    for refused in (two, blank):
        with pytest.raises(InputError) as info:
            service.subject_search(team["aud"], refused, justification="access request 2026-17")
        assert "enrol" not in f"{info.value.message} {info.value.hint}"
