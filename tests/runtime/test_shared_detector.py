"""`run.shared_detector`: one CenterFace for every camera, frames of several cameras in one model call.

The detector runs the real model on frames of the sample videos; the cameras are real RTSP streams and worker
processes. The attacks: a process without the run's key, malformed and oversized frames, the detector killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, wait
from pathlib import Path

import av
import numpy as np
import pytest

from kuzet.config.models import CenterFaceConfig, KuzetConfig
from kuzet.core.errors import ConfigError, ModelError
from kuzet.core.types import Detections, Image
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.runtime import detector as detector_module
from kuzet.runtime.detector import DetectorServer, SharedCenterFace, SharedDetector, encode_frame
from kuzet.runtime.engines import ProcessEngine
from kuzet.runtime.supervisor import Supervisor
from kuzet.store.status import read_status
from tests.runtime.test_run import PURPOSE, Running, event_ids, make_service
from tests.runtime.test_run import running as running  # the fixture, by its name
from tests.support.servers import RtspServer

KEY = b"k" * 32


def frames(path: Path, count: int, step: int = 7) -> list[Image]:
    """`count` frames of a video, `step` frames apart (RGB)."""
    out: list[Image] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


@pytest.fixture(autouse=True)
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cameras wait for answers as long as a loaded test machine may need (the timeout has its own test)."""
    monkeypatch.setattr(detector_module, "REPLY_TIMEOUT_S", 120.0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[DetectorServer, str]]:
    address = str(tmp_path / "detector.sock")
    srv = DetectorServer(CenterFaceDetector(CenterFaceConfig()), address, KEY)
    yield srv, address
    srv.close()


def until(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:.0f} s for {what}"
        time.sleep(0.02)


def connected(srv: DetectorServer, clients: list[SharedCenterFace]) -> None:
    """Connect every client and let the server take them in (before any of them sends a frame)."""
    for c in clients:
        c._conn = c._connect()
    until(lambda: srv.adopt() or len(srv.clients) == len(clients), "the server to take the clients in")


def ask_at_once(srv: DetectorServer, clients: list[SharedCenterFace], images: list[Image]) -> list[Detections]:
    """Every client sends its frame; once all wait, the server serves them with one `serve_once`."""
    got: list[Detections | None] = [None] * len(clients)

    def ask(i: int) -> None:
        got[i] = clients[i].detect(images[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    until(  # adopting a client that connected again by itself
        lambda: srv.adopt() or len(wait(srv.clients, 0.05)) == len(clients), "every client's frame"
    )
    assert srv.serve_once(1.0) == len(clients)
    for t in threads:
        t.join(10)
    assert all(g is not None for g in got)
    return [g for g in got if g is not None]


def send_quietly(conn: Connection, data: bytes) -> None:
    """Send, ignoring the server closing the connection mid-message."""
    with contextlib.suppress(OSError):
        conn.send_bytes(data)


def same_faces(a: Detections, b: Detections) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    assert a.landmarks is not None and b.landmarks is not None
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.05)


def test_frames_of_several_cameras_run_as_one_call_and_get_the_faces_each_would_get_alone(
    server: tuple[DetectorServer, str], video_dir: Path
) -> None:
    srv, address = server
    stage = frames(video_dir / "short_hamilton_clip.mp4", 3)
    people = frames(video_dir / "one-by-one-person-detection.mp4", 1, step=1)
    clients = [SharedCenterFace(CenterFaceConfig(), address, KEY) for _ in range(4)]
    connected(srv, clients)
    alone = CenterFaceDetector(CenterFaceConfig())
    images = [*stage, people[0]]  # three 640x360 frames and one 768x432
    found = ask_at_once(srv, clients, images)
    assert (srv.stats.frames, srv.stats.calls, srv.stats.largest_batch) == (4, 2, 4)  # one call per size
    assert sum(len(f) for f in found[:3]) >= 3  # the stage clip shows faces
    for image, faces in zip(images, found, strict=True):
        same_faces(faces, alone.detect(image))
    for c in clients:
        c.close()


def test_a_process_without_the_runs_key_is_refused_and_the_cameras_are_still_served(
    server: tuple[DetectorServer, str], video_dir: Path
) -> None:
    srv, address = server
    assert stat.S_IMODE(os.stat(address).st_mode) == 0o600
    camera = SharedCenterFace(CenterFaceConfig(), address, KEY)
    connected(srv, [camera])
    with pytest.raises(AuthenticationError):
        Client(address, family="AF_UNIX", authkey=b"guessed" * 5)
    until(lambda: srv.stats.refused == 1, "the refusal to be counted")
    intruder = SharedCenterFace(CenterFaceConfig(), address, b"wrong")
    with pytest.raises(ModelError, match="refused this camera's key"):
        intruder.detect(frames(video_dir / "short_hamilton_clip.mp4", 1)[0])
    assert len(srv.clients) == 1
    image = frames(video_dir / "short_hamilton_clip.mp4", 1)[0]
    same_faces(ask_at_once(srv, [camera], [image])[0], CenterFaceDetector().detect(image))


def test_malformed_and_oversized_frames_are_refused_with_the_reason_and_serving_goes_on(
    server: tuple[DetectorServer, str], video_dir: Path
) -> None:
    srv, address = server
    raw = Client(address, family="AF_UNIX", authkey=KEY)
    until(lambda: srv.adopt() or len(srv.clients) == 1, "the server to take the connection in")
    small = np.zeros((40, 60, 3), np.uint8)
    good = encode_frame(small)
    bad = {
        b"hello": b"too short",
        b"XXXX" + good[4:]: b"unknown header",
        good[:-1]: b"needs 7200 bytes",
        encode_frame(np.zeros((1, 1300, 3), np.uint8)): b"each side must be 1 to 1280",
    }
    for request, reason in bad.items():
        raw.send_bytes(request)
        srv.serve_once(1.0)
        assert raw.poll(30)
        answer = raw.recv_bytes()
        assert answer.startswith(b"KZE1") and reason in answer
    assert srv.stats.refused == len(bad) and srv.stats.frames == 0
    raw.send_bytes(good)
    srv.serve_once(1.0)
    assert raw.poll(30) and raw.recv_bytes() == b"KZD1" + bytes(4)  # no face in a black frame
    huge = threading.Thread(target=send_quietly, args=(raw, bytes(8 + 1281 * 1281 * 3)))
    huge.start()  # larger than any frame can be: the connection is dropped without reading it
    until(lambda: srv.serve_once(0.2) == 0 and srv.clients == [], "the connection to be dropped")
    huge.join(10)
    assert srv.stats.frames == 1
    camera = SharedCenterFace(CenterFaceConfig(), address, KEY)
    connected(srv, [camera])
    image = frames(video_dir / "short_hamilton_clip.mp4", 1)[0]
    assert len(ask_at_once(srv, [camera], [image])[0]) >= 1


def test_a_connection_that_stays_silent_holds_up_no_camera_and_is_dropped(
    server: tuple[DetectorServer, str], video_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An insider's process connects and never answers the key challenge: it used to block every later camera."""
    monkeypatch.setattr(detector_module, "HANDSHAKE_S", 1.0)
    srv, address = server
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(address)
    silent.settimeout(30)
    camera = SharedCenterFace(CenterFaceConfig(), address, KEY)
    connected(srv, [camera])  # served while the silent one still holds its connection
    image = frames(video_dir / "short_hamilton_clip.mp4", 1)[0]
    assert len(ask_at_once(srv, [camera], [image])[0]) >= 1
    got = b""
    while chunk := silent.recv(4096):  # the challenge, which it never answers, then the end: shut after HANDSHAKE_S
        got += chunk
    assert b"#CHALLENGE#" in got
    assert len(srv.clients) == 1
    silent.close()


def test_a_batch_the_model_fails_on_is_tried_one_frame_at_a_time(
    server: tuple[DetectorServer, str], video_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch too large for the device failed every camera in it; each frame is now tried alone before refusing."""
    srv, address = server
    assert srv.detector is not None
    real = srv.detector.detect_shrunk

    def fails_on_batches(images: list[Image]) -> list[Detections]:
        if len(images) > 1:
            raise RuntimeError("out of memory")
        return real(images)

    monkeypatch.setattr(srv.detector, "detect_shrunk", fails_on_batches)
    clients = [SharedCenterFace(CenterFaceConfig(), address, KEY) for _ in range(3)]
    connected(srv, clients)
    images = frames(video_dir / "short_hamilton_clip.mp4", 3)
    found = ask_at_once(srv, clients, images)
    alone = CenterFaceDetector(CenterFaceConfig())
    for image, faces in zip(images, found, strict=True):
        same_faces(faces, alone.detect(image))
    assert (srv.stats.frames, srv.stats.calls, srv.stats.largest_batch) == (3, 3, 1)
    for c in clients:
        c.close()


def test_a_camera_whose_detector_went_away_says_so_and_reconnects_to_the_new_one(
    tmp_path: Path, video_dir: Path
) -> None:
    address = str(tmp_path / "d.sock")
    image = frames(video_dir / "short_hamilton_clip.mp4", 1)[0]
    srv = DetectorServer(CenterFaceDetector(), address, KEY)
    camera = SharedCenterFace(CenterFaceConfig(), address, KEY)
    connected(srv, [camera])
    first = ask_at_once(srv, [camera], [image])[0]
    srv.close()
    with pytest.raises(ModelError, match="went away"):
        camera.detect(image)
    srv = DetectorServer(CenterFaceDetector(), address, KEY)  # kuzet run starts a new one on the same socket
    try:
        same_faces(ask_at_once(srv, [camera], [image])[0], first)  # connects again by itself
    finally:
        srv.close()


def test_the_shared_detector_is_refused_where_it_cannot_serve(tmp_path: Path) -> None:
    cams = [{"name": "gate", "source": "rtsp://127.0.0.1:9/x", "purpose": PURPOSE}]
    config = {"cameras": cams, "face_detector": {"type": "yunet"}, "run": {"shared_detector": True}}
    svc, admin = make_service(tmp_path / "a", config)
    with pytest.raises(ConfigError, match="serves CenterFace, but face_detector.type is yunet"):
        Supervisor(svc.services, admin, secrets=svc.secrets())

    class Ray(ProcessEngine):
        name = "ray"

    svc.ctx.config = svc.ctx.config.model_copy(update={"face_detector": CenterFaceConfig()})
    with pytest.raises(ConfigError, match="local engine only"):
        Supervisor(svc.services, admin, secrets=svc.secrets(), engine=Ray())
    # a traffic-only service starts no detector at all
    traffic = [{**cams[0], "analytics": ["traffic"]}]
    svc.ctx.config = KuzetConfig.model_validate({"cameras": traffic, "run": {"shared_detector": True}})
    assert Supervisor(svc.services, admin, secrets=svc.secrets()).detector is None


@pytest.mark.store
def test_cameras_share_one_detector_that_is_restarted_when_killed(
    tmp_path: Path, faces_dir: Path, rtsp: RtspServer, running: Callable[[Supervisor], Running]
) -> None:
    root = tmp_path / "data"
    config = {
        "cameras": [
            {"name": "stage", "source": rtsp.url("stage"), "purpose": PURPOSE},
            {"name": "people", "source": rtsp.url("people"), "purpose": PURPOSE},
        ],
        "run": {"shared_detector": True, "reconnect_initial_s": 0.3, "reconnect_max_s": 1.0},
    }
    svc, admin = make_service(root, config, faces_dir)
    run = running(Supervisor(svc.services, admin, secrets=svc.secrets()))
    detector = run.sup.detector
    assert isinstance(detector, SharedDetector)
    folder = Path(detector.address).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    run.until(lambda: run.cam("stage").events >= 1, 90, "an event from the stage camera")
    run.until(lambda: detector.totals().clients == 2, 30, "both cameras connected to the detector")
    served = detector.totals().frames
    assert served > 0
    status = read_status(root)
    assert status.detector_pid == detector.pid and status.detector_frames > 0
    committed = event_ids(root)
    os.kill(detector.pid, signal.SIGKILL)
    run.until(lambda: detector.restarts == 1 and detector.pid != 0, 20, "the detector to be restarted")
    analysed = run.cam("stage").frames_analysed
    run.until(lambda: detector.totals().frames > served + 20, 60, "the new detector to serve frames")
    run.until(lambda: run.cam("stage").frames_analysed > analysed + 20, 60, "the stage camera to go on")
    assert committed <= event_ids(root)
    run.sup.stop()
    assert not folder.exists()  # the socket's folder goes with the run
    started = svc.audit_log(admin, action="service.started")
    assert started[-1].details.get("shared_detector") == "centerface"
    assert svc.audit_verify(None).ok
