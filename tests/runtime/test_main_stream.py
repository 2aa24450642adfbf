"""A camera's two streams: the low-resolution sub-stream analysed, the main stream recorded and cut for snapshots.

Both come from GStreamer's RTSP server on loopback: the stage clip as it is (640x360) and the same clip re-encoded
at 1280x720, as a camera serves its sub- and main streams.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from kuzet.config.models import CameraConfig, IngestConfig, RecordConfig, RunConfig
from kuzet.core.types import FaceSample
from kuzet.ingest.live import LiveStream
from kuzet.pipeline.faces import rescale_sample
from kuzet.runtime.recording import MainStream, RecordingKeeper
from kuzet.runtime.supervisor import Supervisor
from kuzet.store.crypto import DataCipher
from kuzet.store.media import MediaStore
from tests.runtime.test_run import PURPOSE, Running, make_service
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
