"""A camera's two streams: the low-resolution sub-stream analysed, the main stream recorded and cut for snapshots.

Both come from GStreamer's RTSP server on loopback: the stage clip as it is (640x360) and the same clip re-encoded
at 1280x720, as a camera serves its sub- and main streams.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from kuzet.analytics.plates import PlateText
from kuzet.analytics.traffic import Violation
from kuzet.config.models import CameraConfig, IngestConfig, RecordConfig, RunConfig
from kuzet.core.types import FaceSample, Image
from kuzet.ingest.live import LiveStream
from kuzet.pipeline.faces import rescale_sample
from kuzet.pipeline.traffic import PlateTrack, sharper_plate_track, sharper_violation
from kuzet.runtime.recording import MainStream, RecordingKeeper
from kuzet.runtime.supervisor import Supervisor
from kuzet.store.crypto import DataCipher
from kuzet.store.media import MediaStore
from tests.runtime.test_run import PURPOSE, Running, make_service
from tests.runtime.test_run import running as running  # the fixture, by its name
from tests.support.rawdb import raw_db
from tests.support.servers import RtspServer, free_port

pytestmark = pytest.mark.store


def test_a_best_shot_is_cut_again_from_the_bigger_picture_with_its_boxes_scaled() -> None:
    sub = np.zeros((360, 640, 3), np.uint8)
    main = np.zeros((1080, 1920, 3), np.uint8)
    box = np.array([300, 100, 340, 150], np.float32)
    shot = FaceSample(
        chip=np.zeros((150, 150, 3), np.uint8),
        crop=sub[76:174, 276:364].copy(),
        box=box,
        quality=0.5,
        pts=1.0,
        others=np.array([[0, 0, 10, 10]], np.float32),  # a face at (276, 76) in the analysed frame
        crop_box=box - np.array([276, 76, 276, 76], np.float32),
    )
    big = rescale_sample(shot, main, analysed=(640, 360))
    np.testing.assert_allclose(big.box, box * 3)
    assert big.crop.shape[0] >= 2.9 * shot.crop.shape[0] and big.crop.shape[1] >= 2.9 * shot.crop.shape[1]
    x0, y0 = big.box[:2] - big.crop_box[:2]
    np.testing.assert_allclose(big.others[0] + [x0, y0, x0, y0], np.array([276, 76, 286, 86]) * 3)
    assert big.chip is shot.chip and big.quality == shot.quality  # recognition is what the analysis saw


def test_the_main_stream_is_recorded_and_gives_the_picture_of_an_analysed_moment(
    two_streams: RtspServer, tmp_path: Path
) -> None:
    camera = CameraConfig(name="cam", source=two_streams.url("sub"), record_source=two_streams.url("main"))
    record = RecordConfig(mode="continuous", segment_s=2)
    media = MediaStore(tmp_path / "media")
    cipher = DataCipher({"00112233aabbccdd": b"k" * 32}, "00112233aabbccdd", source="test")
    keeper = RecordingKeeper("cam", record, media=media, cipher=cipher, cache_dir=tmp_path / "cache")
    main = MainStream(two_streams.url("main"), camera=camera, ingest=IngestConfig(), run=RunConfig(), keeper=keeper)
    sub = LiveStream(two_streams.url("sub"), fps=10, queue_size=4, open_timeout_s=5, read_timeout_s=5, max_pixels=10**7)
    try:
        frames = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:
            frame = sub.get(timeout=1)
            if frame is not None:
                frames.append(frame)
        assert sub.size == (640, 360) and main.size == (1280, 720) and main.reason == ""
        assert sub.offset is not None
        frame = frames[-5]
        picture = main.picture_at(frame.pts + sub.offset)
        assert picture is not None and picture.shape == (720, 1280, 3)
        # the same moment: the main picture, shrunk, is the analysed frame (a wrong frame differs far more)
        small = cv2.resize(picture, (640, 360), interpolation=cv2.INTER_AREA).astype(np.float32)
        same = np.abs(small - frame.image).mean()
        other = np.abs(small - frames[-15].image).mean()
        assert same < 6 and same < other / 2, (same, other)
        assert main.picture_at(frame.pts + sub.offset + 3600) is None  # not held: the caller falls back
    finally:
        sub.close()
        stored = main.close()
    assert stored
    for rel in stored:
        plain = tmp_path / "seg.mp4"
        plain.write_bytes(media.read_encrypted(rel, cipher=cipher))
        with av.open(str(plain)) as c:
            assert (c.streams.video[0].width, c.streams.video[0].height) == (1280, 720)


def _snapshot_widths(root: Path, camera: str) -> list[int]:
    with raw_db(root, read_only=True) as db:
        rels = [row[0] for row in db.execute("SELECT snapshot FROM events WHERE camera = ?", (camera,))]
    widths = []
    for rel in rels:
        image = cv2.imdecode(np.frombuffer((root / "media" / rel).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        widths.append(image.shape[1])
    return widths


def test_a_camera_analyses_its_sub_stream_and_records_and_snapshots_its_main_stream(
    tmp_path: Path,
    faces_dir: Path,
    two_streams: RtspServer,
    running: Callable[[Supervisor], Running],
) -> None:
    root = tmp_path / "data"
    record = {"mode": "events", "segment_s": 2, "pre_roll_s": 1, "post_roll_s": 1}
    config = {
        "ingest": {"open_timeout_s": 1.5},
        "cameras": [
            {
                "name": "dual",
                "source": two_streams.url("sub"),
                "record_source": two_streams.url("main"),
                "purpose": PURPOSE,
                "record": record,
            },
            {  # its main stream is down: analysis goes on, the reason says so
                "name": "nomain",
                "source": two_streams.url("sub"),
                "record_source": f"rtsp://127.0.0.1:{free_port()}/main",
                "purpose": PURPOSE,
                "record": record,
            },
        ],
        "run": {"reconnect_initial_s": 0.3, "reconnect_max_s": 1.0, "failed_after": 2},
    }
    svc, admin = make_service(root, config, faces_dir)
    run = running(Supervisor(svc.services, admin, secrets=svc.secrets()))
    run.until(
        lambda: "analysing 640x360; recording the main stream (1280x720)" in run.cam("dual").reason,
        60,
        "the dual camera up on its sub-stream, recording its main stream",
    )
    assert run.cam("dual").state == "up"
    run.until(
        lambda: run.cam("nomain").state == "up" and "analysing 640x360; main stream: " in run.cam("nomain").reason,
        60,
        "the camera without its main stream up, saying so",
    )
    assert "connection refused" in run.cam("nomain").reason and "retrying" in run.cam("nomain").reason
    run.until(lambda: run.cam("dual").events >= 1 and run.cam("nomain").events >= 1, 90, "events on both cameras")
    assert run.cam("nomain").frames_analysed > 0
    run.sup.stop()

    # snapshots: cut from the 1280x720 main stream on `dual`, from the 640x360 analysed frame on `nomain`
    dual, plain = _snapshot_widths(root, "dual"), _snapshot_widths(root, "nomain")
    assert dual and plain
    assert min(dual) > 1.6 * max(plain), (dual, plain)

    # recordings: the main stream's, encrypted, at its own resolution; nothing without it
    recordings = sorted((root / "media" / "recordings" / "dual").rglob("*.mp4.enc"))
    assert recordings
    for i, rec in enumerate(recordings):
        plain_mp4 = tmp_path / f"segment-{i}.mp4"
        plain_mp4.write_bytes(svc.media.read_encrypted(rec.relative_to(root / "media").as_posix(), cipher=svc.cipher))
        with av.open(str(plain_mp4)) as c:
            assert (c.streams.video[0].width, c.streams.video[0].height) == (1280, 720)
            assert sum(1 for _ in c.decode(video=0)) >= 1
    assert not (root / "media" / "recordings" / "nomain").exists()
    assert not list((root / "run" / "cache").rglob("*.mp4"))
    started = svc.audit_log(admin, action="service.started")[-1]
    assert f"dual={two_streams.url('main')}" in str(started.details["main_streams"])  # where data comes from


def _violation(frames: list[tuple[float, np.ndarray, np.ndarray]]) -> Violation:
    v = Violation("one-way", 7, frames[0][0], "lane", {}, frames[0][2].copy())
    v.frames = frames
    v.plate, v.plate_crop = "123ABC02", np.zeros((10, 40, 3), np.uint8)
    v.plate_box, v.plate_pts = np.array([100, 200, 140, 210], np.float32), 2.0
    return v


def test_violation_evidence_and_plate_crops_are_cut_again_from_the_main_stream_where_it_holds_the_moment() -> None:
    sub = np.zeros((432, 768, 3), np.uint8)
    main = np.full((864, 1536, 3), 7, np.uint8)
    main[400:420, 200:280] = 200  # the plate, at twice the analysed size
    box = np.array([50, 150, 250, 260], np.float32)
    held = {1.0: main, 2.0: main}

    def picture_at(pts: float) -> tuple[Image, tuple[int, int]] | None:
        return (held[pts], (768, 432)) if pts in held else None

    v = _violation([(1.0, sub, box), (5.0, sub, box)])  # the main stream no longer holds 5.0 s
    sharp = sharper_violation(v, picture_at)
    assert sharp.frames[0][1] is main and sharp.frames[1][1] is sub
    np.testing.assert_allclose(sharp.frames[0][2], box * 2)
    np.testing.assert_allclose(sharp.frames[1][2], box)
    assert sharp.plate_crop is not None and sharp.plate_crop.shape == (24, 96, 3)  # 80x20 plus 10% each side
    assert sharp.plate_crop[2:-2, 8:-8].min() == 200
    assert (sharp.kind, sharp.plate, sharp.pts, sharp.measurements) == (v.kind, v.plate, v.pts, v.measurements)
    assert v.frames[0][1] is sub  # the analysed violation is not changed

    plate = PlateTrack(7, PlateText("123ABC02", "kz", 0.9), 0.5, 3.0, v.plate_crop, v.plate_box, 2.0)
    crop = sharper_plate_track(plate, picture_at).crop
    assert crop is not None and crop.shape == (24, 96, 3)
    gone = PlateTrack(7, PlateText("123ABC02", "kz", 0.9), 0.5, 3.0, v.plate_crop, v.plate_box, 9.0)
    assert sharper_plate_track(gone, picture_at).crop is v.plate_crop  # not held: the analysed crop stays


def _evidence_widths(root: Path, camera: str) -> list[int]:
    """Widths of the scene frames of the camera's evidence packages, checked against what their manifests say."""
    with raw_db(root, read_only=True) as db:
        folders = [row[0] for row in db.execute("SELECT evidence FROM violations WHERE camera = ?", (camera,))]
    widths = []
    for folder in folders:
        manifest = json.loads((root / "media" / folder / "manifest.json").read_text())
        assert manifest["analysed_size"] == [768, 432]  # the pixels of the measurements
        for entry in manifest["files"]:
            if entry["name"].startswith("frame_"):
                data = (root / "media" / folder / entry["name"]).read_bytes()
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                assert [entry["width"], entry["height"]] == [image.shape[1], image.shape[0]]
                widths.append(image.shape[1])
    return widths


def test_a_traffic_camera_cuts_its_violation_evidence_from_the_main_stream(
    tmp_path: Path, two_road_streams: RtspServer, running: Callable[[Supervisor], Running]
) -> None:
    root = tmp_path / "data"
    # the whole picture is a one-way zone where only downward travel is allowed: the cars driving up break it
    zone = {"name": "lane", "polygon": [[0, 0], [768, 0], [768, 432], [0, 432]], "rule": "one-way", "direction": [0, 1]}
    traffic = {"zones": [zone], "plates": False}
    cameras = [
        {"name": name, "source": two_road_streams.url("sub"), "analytics": ["traffic"], "purpose": PURPOSE,
         "traffic": traffic} | extra
        for name, extra in (("dual", {"record_source": two_road_streams.url("main")}), ("plain", {}))
    ]  # fmt: skip
    svc, admin = make_service(root, {"cameras": cameras, "run": {"reconnect_initial_s": 0.3}})
    run = running(Supervisor(svc.services, admin, secrets=svc.secrets()))
    run.until(lambda: run.cam("dual").violations >= 1 and run.cam("plain").violations >= 1, 120, "a violation on each")
    run.sup.stop()
    dual, plain = _evidence_widths(root, "dual"), _evidence_widths(root, "plain")
    assert plain and set(plain) == {768}
    assert dual and max(dual) == 1536, dual  # from the main stream (a frame it no longer held stays 768 wide)
    assert svc.audit_verify(None).ok
