"""A violation's evidence package, end to end through `Kuzet.analyze` on a video the test makes from real plates.

Everything is real (decoding, tracking, plate reading, redaction, evidence, ledger) except the object detector: the
video's "cars" are photo crops, which background subtraction sees only at their edges, so a scripted detector that
knows where the test put them stands in for it (motion detection itself is tested on the real car video).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from kuzet.app import AnalysisResult, Kuzet
from kuzet.config.models import KuzetConfig
from kuzet.core.types import Detections
from kuzet.ingest import load_image
from kuzet.store.evidence import verify_evidence

pytestmark = pytest.mark.store

W, H, FPS, FRAMES = 960, 540, 10, 60
PLATES = {"A": ("br/GWT2180.jpg", (529, 308, 227, 73)), "B": ("br/JPQ9870.jpg", (571, 623, 320, 104))}


def _car(plates_dir: Path, name: str) -> np.ndarray:
    """A 'car': the real photo around a real plate, scaled so the plate is 180 px wide."""
    file, (x, y, w, h) = PLATES[name]
    img = load_image(plates_dir / file, max_pixels=10**8)
    crop = img[max(0, y - 2 * h) : y + 2 * h, max(0, x - w // 2) : x + w + w // 2]
    scale = 180 / w
    return np.ascontiguousarray(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def _x(name: str, i: int) -> int:
    """Left edge of each car at frame i: A drives left (the wrong way), B drives right."""
    return 700 - 10 * i if name == "A" else 20 + 8 * i


def _make_video(path: Path, cars: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    road = rng.integers(70, 90, (H, W, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for i in range(FRAMES):
            frame = road.copy()
            for name, top in (("A", 40), ("B", 290)):
                car = cars[name]
                x = _x(name, i)
                x0, x1 = max(0, x), min(W, x + car.shape[1])
                if x1 > x0:
                    frame[top : top + car.shape[0], x0:x1] = car[:, x0 - x : x1 - x]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _detail(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())


class WhereTheCarsAre:
    """Scripted detector: the test's car boxes, frame by frame."""

    name = "scripted"

    def __init__(self, cars: dict[str, np.ndarray]) -> None:
        self.cars = cars
        self.frame = 0

    def detect(self, image: np.ndarray) -> Detections:
        boxes = []
        for name, top in (("A", 40), ("B", 290)):
            h, w = self.cars[name].shape[:2]
            x = _x(name, self.frame)
            x0, x1 = max(0, x), min(W, x + w)
            if x1 - x0 > 40:
                boxes.append([x0, top, x1, top + h])
        self.frame += 1
        return Detections(
            boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
            scores=np.ones(len(boxes), np.float32),
            labels=np.full(len(boxes), "vehicle"),
        )


def analyse_one_way(
    tmp_path: Path,
    data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    prepare: Callable[[Kuzet], object] = lambda _svc: None,
) -> tuple[Kuzet, AnalysisResult, dict[str, np.ndarray]]:
    cars = {n: _car(data_root / "plates", n) for n in PLATES}
    monkeypatch.setattr("kuzet.pipeline.camera.build_object_detector", lambda _config: WhereTheCarsAre(cars))
    video = tmp_path / "one-way.mp4"
    _make_video(video, cars)
    config = KuzetConfig.model_validate(
        {
            "cameras": [
                {
                    "name": "one-way-street",
                    "analytics": ["traffic"],
                    "traffic": {
                        "zones": [
                            {
                                "name": "lane",
                                "polygon": [[0, 0], [W, 0], [W, H], [0, H]],
                                "rule": "one-way",
                                "direction": [1, 0],
                            }
                        ],
                        "lines": [{"name": "gate", "points": [[480, 0], [480, H]]}],
                        "plate_formats": ["br"],
                        "plate_every": 2,
                    },
                }
            ]
        }
    )
    svc = Kuzet(tmp_path / "data", config)
    admin = svc.init_admin("admin", "correct horse battery")
    prepare(svc)
    result = svc.analyze(admin, str(video), camera="one-way-street")
    return svc, result, cars


@pytest.fixture
def one_way_run(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Kuzet, AnalysisResult, dict[str, np.ndarray]]:
    return analyse_one_way(tmp_path, data_root, monkeypatch)


def test_wrong_way_violation_has_a_hashed_redacted_evidence_package(
    one_way_run: tuple[Kuzet, AnalysisResult, dict[str, np.ndarray]],
) -> None:
    svc, result, cars = one_way_run
    traffic = result.traffic
    assert traffic is not None
    assert [v.kind for v in traffic.violations] == ["one-way"]
    v = traffic.violations[0]
    assert v.plate == "GWT2180"  # the offender's plate, read and voted across its track
    assert sorted((p.direction, p.plate) for p in traffic.passages) == [("in", "GWT2180"), ("out", "JPQ9870")]
    # the package verifies, and its hash is the one in the audit ledger
    assert verify_evidence(svc.media.root, v.evidence, v.evidence_sha256) == []
    admin = svc.login("admin", "correct horse battery")[0]
    entries = svc.audit_log(admin, action="violation.recorded")
    assert len(entries) == 1
    assert entries[0].details["evidence_sha256"] == v.evidence_sha256
    assert svc.audit_verify(admin).ok
    folder = svc.media.root / v.evidence
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "one-way"
    assert manifest["plate"] == "GWT2180"
    assert {f["name"] for f in manifest["files"]} >= {"frame_1.jpg", "plate.jpg"}
    # in the scene frame the offender's plate is legible and the other car's plate is pixelated
    frame = load_image(folder / "frame_1.jpg", max_pixels=10**8)
    i = round(v.at * FPS)
    a_plate = _plate_box("A", i, cars)
    b_plate = _plate_box("B", i, cars)
    assert _detail(_cut(frame, a_plate)) > 3 * _detail(_cut(frame, b_plate))
    # tampering with a file is caught
    (folder / "frame_1.jpg").write_bytes(b"changed")
    assert verify_evidence(svc.media.root, v.evidence, v.evidence_sha256) == ["frame_1.jpg was changed"]
    svc.close()


def _plate_box(name: str, i: int, cars: dict[str, np.ndarray]) -> tuple[int, int, int, int]:
    _, (x, _y, w, h) = PLATES[name]
    scale = 180 / w
    top = 40 if name == "A" else 290
    px = _x(name, i) + round((w // 2 if x - w // 2 >= 0 else x) * scale)
    py = top + round(2 * h * scale)
    return px, py, round(w * scale), round(h * scale)


def _cut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return image[max(0, y) : y + h, max(0, x) : x + w]


def test_retention_keeps_held_evidence_and_deletes_it_when_released(
    one_way_run: tuple[Kuzet, AnalysisResult, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from kuzet.store.models import PassageRow, ViolationRow

    svc, result, _ = one_way_run
    assert result.traffic is not None
    v = result.traffic.violations[0]
    assert len(result.traffic.passages) == 2
    admin = svc.login("admin", "correct horse battery")[0]
    svc.hold_add(admin, "court-17", "violation", v.id, reason="contested fine")
    later = svc.now() + timedelta(days=400)
    monkeypatch.setattr(svc, "now", lambda: later)
    kept = svc.retention_run(admin)
    assert kept.violations == 0
    assert kept.kept_on_hold >= 1
    assert (svc.media.root / v.evidence / "manifest.json").is_file()
    svc.hold_release(admin, "court-17", reason="case closed")
    gone = svc.retention_run(admin)
    assert gone.violations == 1
    assert not (svc.media.root / v.evidence).exists()
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ViolationRow)) == 0
        assert s.scalar(select(func.count()).select_from(PassageRow)) == 0
    svc.close()


def test_plate_watchlist_hit_becomes_an_alert_for_review(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from kuzet.core.errors import InputError, PolicyRefusal
    from kuzet.governance.watchlists import WatchlistRequest
    from tests.conftest import add_user

    entry: dict[str, int] = {}

    def file_entry(svc: Kuzet) -> None:
        req_user = add_user(svc, "rustam", "requester")
        approver = add_user(svc, "aigul", "approver")
        request = WatchlistRequest(
            list_name="stolen",
            subject_name="stolen grey hatchback",
            category="stolen-vehicle",
            legal_basis="stolen-vehicle-report",
            reference="KUI-2026-1177",
            authority="city police",
            expires=svc.now().date() + timedelta(days=30),
        )
        with pytest.raises(PolicyRefusal, match="watches plates, not faces"):
            svc.watchlist_request(req_user, request, data_root / "plates" / PLATES["B"][0])
        with pytest.raises(InputError, match="not 2-10"):
            svc.watchlist_request(req_user, request, plate="?")
        entry["id"] = svc.watchlist_request(req_user, request, plate="jpq-9870")
        svc.watchlist_approve(approver, entry["id"], reason="report checked")

    svc, result, _ = analyse_one_way(tmp_path, data_root, monkeypatch, file_entry)
    assert len(result.alert_ids) == 1
    reviewer = add_user(svc, "marat", "reviewer")
    (alert,) = svc.review_list(reviewer)
    assert alert.entry_id == entry["id"]
    assert alert.status == "pending"
    svc.close()


def test_stored_passages_and_violations_through_the_api(
    one_way_run: tuple[Kuzet, AnalysisResult, dict[str, np.ndarray]],
) -> None:
    from fastapi.testclient import TestClient

    from kuzet.api.app import create_app
    from tests.conftest import add_user

    svc, result, _ = one_way_run
    add_user(svc, "olga", "operator")
    add_user(svc, "rustam", "requester")
    client = TestClient(create_app(svc.services))
    _, token = svc.login("olga", "correct horse battery")
    h = {"Authorization": f"Bearer {token}"}
    violations = client.get("/api/traffic/violations", headers=h).json()["items"]
    assert [(v["rule"], v["plate"]) for v in violations] == [("one-way", "GWT2180")]
    assert result.traffic is not None
    assert violations[0]["evidence_sha256"] == result.traffic.violations[0].evidence_sha256
    passages = client.get("/api/traffic/passages", params={"plate": "jpq-9870"}, headers=h).json()["items"]
    assert [(p["direction"], p["plate"]) for p in passages] == [("out", "JPQ9870")]
    assert client.get("/api/traffic/cars", headers=h).status_code == 422
    _, req_token = svc.login("rustam", "correct horse battery")
    assert client.get("/api/traffic/passages", headers={"Authorization": f"Bearer {req_token}"}).status_code == 403
    admin = svc.login("admin", "correct horse battery")[0]
    viewed = svc.audit_log(admin, action="traffic.passages.view")[-1].details
    assert viewed == {"camera": None, "plate_searched": True, "count": 1}
    svc.close()
