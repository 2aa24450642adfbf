"""Every kind of camera connects and keeps time, against real servers on loopback.

A second RTSP server (VLC, UDP only) beside GStreamer's, RTSP tunnelled through HTTP, an MJPEG-over-HTTP camera
whose stream carries no usable clock, a live HLS stream that arrives a segment at a time, and a camera that refuses
the credentials.
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kuzet.core.errors import InputError
from kuzet.ingest.live import LiveStream, WallClock
from kuzet.ingest.sources import error_words, open_live
from kuzet.runtime.supervisor import Supervisor
from kuzet.runtime.worker import AuthLock
from kuzet.store.status import CameraStatus
from tests.runtime.test_run import PURPOSE, make_service, write_secrets
from tests.support.http_cameras import HlsServer, MjpegCamera, jpeg_frames, make_hls
from tests.support.servers import RtspServer, VlcRtspServer, free_port


def _open(url: str, **kw: Any) -> LiveStream:
    return LiveStream(url, fps=10, queue_size=4, open_timeout_s=5, read_timeout_s=5, max_pixels=10**7, **kw)


def _take(stream: LiveStream, seconds: float, *, work_s: float = 0.0) -> list[tuple[float, float]]:
    """(arrival, frame time) of the frames analysed in `seconds`, each analysis taking `work_s`."""
    got: list[tuple[float, float]] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        frame = stream.get(timeout=1)
        if frame is not None:
            got.append((time.monotonic() - t0, frame.pts))
            time.sleep(work_s)
    return got


@pytest.fixture
def vlc(video_dir: Path, tmp_path: Path) -> Iterator[VlcRtspServer]:
    """VLC's RTSP output: the stage clip over RTP/UDP only."""
    if shutil.which("cvlc") is None:
        pytest.fail("cvlc is missing: run `make install-test` (Debian's vlc-bin and vlc-plugin-base)")
    server = VlcRtspServer("cam", video_dir / "short_hamilton_clip.mp4", tmp_path / "vlc.log")
    server.start()
    yield server
    server.stop()


def test_an_rtsp_server_offering_only_udp_connects_with_auto_and_tcp_says_why_not(vlc: VlcRtspServer) -> None:
    with pytest.raises(InputError, match=r"over tcp: the camera does not offer this transport") as refused:
        _open(vlc.url, transport="tcp")
    assert "Errno" not in str(refused.value)
    for transport in ("auto", "udp"):
        stream = _open(vlc.url, transport=transport)
        try:
            assert stream.transport == "udp" and stream.clock == "stream"
            got = _take(stream, 2.0)
            assert len(got) >= 8, got  # frames, not silence (RTP packets arrive on UDP ports)
        finally:
            stream.close()


def test_rtsp_tunnelled_through_http(rtsp: RtspServer) -> None:
    stream = _open(rtsp.url("stage"), transport="http")
    try:
        assert stream.transport == "http"
        assert len(_take(stream, 2.0)) >= 8
    finally:
        stream.close()


def test_failures_are_told_in_words_with_the_transport() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(InputError) as refused:
        open_live(f"rtsp://127.0.0.1:{port}/x", transport="auto", open_timeout_s=2, read_timeout_s=2)
    message = refused.value.message
    assert message.endswith("over tcp: connection refused (nothing listens on that port)")  # UDP is not tried
    words = message.replace(str(port), "PORT")  # a port such as 40111 holds the digits of ECONNREFUSED
    assert "Errno" not in words and "111" not in words
    assert error_words(OSError(5, "Input/output error")).startswith("the connection failed or broke")


@pytest.fixture(scope="module")
def jpegs(video_dir: Path) -> list[bytes]:
    return jpeg_frames(video_dir / "short_hamilton_clip.mp4", count=60)


def test_an_mjpeg_camera_is_sampled_and_timed_by_the_wall_clock(jpegs: list[bytes]) -> None:
    camera = MjpegCamera(jpegs, fps=10)  # FFmpeg assumes 25 frames/s for MJPEG over HTTP
    camera.start()
    try:
        stream = _open(camera.url)
        try:
            assert stream.clock == "wall"
            got = _take(stream, 4.0)
        finally:
            stream.close()
        # a 10 frames/s camera analysed at 10 frames/s: all but the frames FFmpeg read while probing
        assert len(got) >= 34, len(got)
        arrival_span, time_span = got[-1][0] - got[0][0], got[-1][1] - got[0][1]
        assert abs(time_span - arrival_span) < 0.3, (time_span, arrival_span)  # event times follow the clock
        # 0.1 s apart (25 frames/s assumed would give 0.04); one late frame on a busy machine moves a gap, not the rest
        gaps = [b[1] - a[1] for a, b in itertools.pairwise(got)]
        assert statistics.median(gaps) == pytest.approx(0.1, abs=0.01) and all(0.02 < g < 0.3 for g in gaps), gaps

        stream = _open(camera.url, clock="stream")  # what it was: 25 frames/s assumed, 10 sent
        try:
            before = _take(stream, 4.0)
        finally:
            stream.close()
        assert len(before) <= 20 and before[-1][1] - before[0][1] < 0.6 * (before[-1][0] - before[0][0])
    finally:
        camera.stop()


def test_hls_bursts_are_sampled_by_time_not_dropped(video_dir: Path, tmp_path: Path) -> None:
    durations = make_hls(video_dir / "car-detection.mp4", tmp_path / "hls", seconds=10)
    server = HlsServer(tmp_path / "hls", durations)
    server.start()
    try:
        stream = _open(server.url)
        assert stream.bursty and stream.clock == "wall"
        frames: list[float] = []
        try:
            with pytest.raises(InputError, match="ended"):
                while True:
                    frame = stream.get(timeout=10)
                    assert frame is not None
                    frames.append(frame.pts)
                    time.sleep(0.02)  # analysis well within real time
        finally:
            stream.close()
        assert stream.counters.dropped == 0  # the 4-frame queue used to drop most of each segment's burst
        assert abs(len(frames) - 10 * sum(durations)) <= 3, (len(frames), sum(durations))
        assert all(b > a for a, b in itertools.pairwise(frames))
    finally:
        server.stop()


def test_the_wall_clock_keeps_a_burst_spaced_and_follows_jumps() -> None:
    clock = WallClock(100.0, bursty=True)
    burst = [clock.stamp(50.0 + i * 0.1, 102.0) for i in range(20)]  # a 2-s segment arriving at once
    assert burst[0] == pytest.approx(2.0) and burst[-1] == pytest.approx(3.9)
    assert clock.stamp(0.0, 104.0) == pytest.approx(4.0)  # the stream's clock restarted: anchored again, onward
    steady = WallClock(100.0, bursty=False)
    assert steady.stamp(7.0, 101.5) == pytest.approx(1.5)  # arrival decides


def test_the_auth_lock_survives_restarts_and_ends_when_the_credentials_change(tmp_path: Path) -> None:
    lock = AuthLock(tmp_path, "gate", limit=3)
    wrong, right = "http://u:wrong@h/v", "http://u:right@h/v"
    assert [lock.refused(wrong) for _ in range(3)] == [1, 2, 3]
    again = AuthLock(tmp_path, "gate", limit=3)  # a new worker or a restarted service
    assert again.locked(wrong) and not again.locked(right)
    assert "wrong" not in lock.path.read_text() and lock.path.stat().st_mode & 0o077 == 0
    again.clear()
    assert not again.locked(wrong)


def _stepping(
    sup: Supervisor, camera: str
) -> tuple[Callable[[], CameraStatus], Callable[[Callable[[], bool], float, str], None]]:
    """The camera's status, and a wait that steps the supervisor until a condition holds (or fails saying why)."""

    def status() -> CameraStatus:
        return sup.slots[camera].status()

    def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sup.step(0.2)
            if predicate():
                return
        pytest.fail(f"timed out waiting for {what}: {status().state} {status().reason}")

    return status, until


def _door_with_a_wrong_password(root: Path, streams: dict[str, str]) -> Supervisor:
    """A started supervisor running camera `door` (its `streams`) whose password secret is wrong; 3 attempts."""
    camera = {
        "name": "door", "analytics": ["traffic"], "purpose": PURPOSE,
        "username": "secret:door_user", "password": "secret:door_pw",
    } | streams  # fmt: skip
    run = {"reconnect_initial_s": 0.2, "reconnect_max_s": 0.4, "auth_attempts": 3, "failed_after": 10}
    svc, admin = make_service(root, {"cameras": [camera], "run": run})
    write_secrets(root, {"door_user": "viewer", "door_pw": "wrong-pass"})
    sup = Supervisor(svc.services, admin, secrets=svc.secrets())
    sup.start()
    return sup


@pytest.mark.store
def test_wrong_credentials_stop_after_three_attempts_until_the_secret_changes(
    tmp_path: Path, jpegs: list[bytes]
) -> None:
    camera = MjpegCamera(jpegs, fps=10, credentials="viewer:right-pass")
    camera.start()
    root = tmp_path / "data"
    sup = _door_with_a_wrong_password(root, {"source": camera.url})
    try:
        door, until = _stepping(sup, "door")
        until(lambda: door().state == "failed" and door().reason.startswith("wrong credentials"), 60, "the lockout")
        assert camera.attempts == 3 and camera.requests <= 6  # FFmpeg asks without credentials first
        requests = camera.requests
        time.sleep(3.0)
        sup.step(0.5)
        assert camera.requests == requests and door().state == "failed"  # no fourth try: the account is safe

        write_secrets(root, {"door_user": "viewer", "door_pw": "right-pass"})  # the operator corrects the secret
        until(lambda: door().state == "up" and door().frames_analysed > 5, 60, "the camera up with the new secret")
        assert camera.authorized >= 1 and "wall clock" in door().reason
    finally:
        sup.stop()
        camera.stop()


@pytest.mark.store
def test_a_main_stream_refusing_its_credentials_stops_after_three_attempts_until_the_secret_changes(
    tmp_path: Path, jpegs: list[bytes]
) -> None:
    sub = MjpegCamera(jpegs, fps=10)  # the analysed stream asks for nothing
    main = MjpegCamera(jpegs, fps=10, credentials="viewer:right-pass")
    sub.start()
    main.start()
    root = tmp_path / "data"
    sup = _door_with_a_wrong_password(root, {"source": sub.url, "record_source": main.url})
    try:
        door, until = _stepping(sup, "door")
        until(lambda: "main stream" in door().reason and "not tried again" in door().reason, 60, "the lockout")
        assert door().state == "up" and door().frames_analysed > 0  # the analysis goes on
        assert main.attempts == 3
        assert (root / "run" / "auth" / "main" / "door.json").exists()  # kept across worker and service restarts
        time.sleep(3.0)
        sup.step(0.5)
        assert main.attempts == 3  # no fourth try: the account is safe

        write_secrets(root, {"door_user": "viewer", "door_pw": "right-pass"})  # the operator corrects the secret
        until(lambda: "snapshots from the main stream" in door().reason, 60, "the main stream up with the new secret")
        assert main.authorized >= 1
        assert not (root / "run" / "auth" / "main" / "door.json").exists()
    finally:
        sup.stop()
        sub.stop()
        main.stop()
