"""Real servers for the live-camera tests: GStreamer's RTSP server and Debian's mosquitto, on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Broker, wait_until
from tests.support.servers import RtspServer

__all__ = ["OPEN_SERVICES", "Broker", "wait_until"]


@pytest.fixture
def rtsp(video_dir: Path, tmp_path: Path) -> Iterator[RtspServer]:
    """The sample videos as RTSP cameras: `stage` (Hamilton clip), `road` (car video), `people` (one by one)."""
    server = RtspServer(
        {
            "stage": video_dir / "short_hamilton_clip.mp4",
            "road": video_dir / "car-detection.mp4",
            "people": video_dir / "one-by-one-person-detection.mp4",
        },
        tmp_path / "rtsp.log",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a camera that never answers)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield int(sock.getsockname()[1])
    sock.close()


OPEN_SERVICES: list[Any] = []
"""Services `make_service` opened; closed after each test (their pooled connections with them)."""


@pytest.fixture(autouse=True)
def _close_services() -> Iterator[None]:
    yield
    while OPEN_SERVICES:
        OPEN_SERVICES.pop().close()


@pytest.fixture
def two_streams(video_dir: Path, tmp_path: Path) -> Iterator[RtspServer]:
    """One camera's two streams: `sub`, the stage clip as it is (640x360), and `main`, the same clip at 1280x720."""
    from tests.support.servers import transcode

    main = transcode(video_dir / "short_hamilton_clip.mp4", tmp_path / "main-720p.mp4", width=1280, height=720)
    server = RtspServer({"sub": video_dir / "short_hamilton_clip.mp4", "main": main}, tmp_path / "rtsp2.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def two_road_streams(video_dir: Path, tmp_path: Path) -> Iterator[RtspServer]:
    """A traffic camera's two streams: `sub`, the car video as it is (768x432), and `main`, the same at 1536x864."""
    from tests.support.servers import transcode

    main = transcode(video_dir / "car-detection.mp4", tmp_path / "road-main.mp4", width=1536, height=864)
    server = RtspServer({"sub": video_dir / "car-detection.mp4", "main": main}, tmp_path / "rtsp-road.log")
    server.start()
    yield server
    server.stop()
