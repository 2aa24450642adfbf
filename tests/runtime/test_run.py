"""`kuzet run` end to end with real parts: RTSP cameras (gst-rtsp-server), worker processes, mosquitto, webhooks.

Fault tests: the RTSP server killed and restarted, a stalled stream, a camera that never answers, a worker killed
with SIGKILL, and the whole service killed with SIGKILL while it writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from kuzet.app import Kuzet
from kuzet.config.models import KuzetConfig
from kuzet.core.errors import ConfigError, PermissionDenied, PolicyRefusal
from kuzet.core.types import User
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.runtime.integrations import verify_signature
from kuzet.runtime.metrics import render
from kuzet.runtime.supervisor import Supervisor
from kuzet.store.status import CameraStatus, read_status, wall_path
from tests.conftest import PASSWORD, enrol
from tests.runtime.conftest import OPEN_SERVICES, Broker, wait_until
from tests.support.rawdb import raw_db
from tests.support.servers import RtspServer, free_port

pytestmark = pytest.mark.store

LIN = "face_recognition_examples/lin-manuel-miranda.png"
PURPOSE = "staff access at the stage door"


def make_service(root: Path, config: dict[str, Any], faces_dir: Path | None = None) -> tuple[Kuzet, User]:
    """A data directory with an administrator (who runs the cameras) and, given faces, Lin-Manuel enrolled."""
    svc = Kuzet(root, KuzetConfig.model_validate(config))
    OPEN_SERVICES.append(svc)
    svc.init_admin("admin", PASSWORD)
    admin, _ = svc.login("admin", PASSWORD)
    if faces_dir is not None:
        enrol(svc, admin, "Lin-Manuel Miranda", [faces_dir / LIN])
    return svc, admin


def write_secrets(root: Path, values: dict[str, str]) -> None:
    path = root / "secrets.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    path.chmod(0o600)


class Running:
    """A supervisor stepped by the test (so the test decides when to look)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def cam(self, name: str) -> CameraStatus:
        return self.sup.slots[name].status()

    def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sup.step(0.2)
            if predicate():
                return
        states = {n: (s.status().state, s.status().reason) for n, s in self.sup.slots.items()}
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; cameras: {states}")


@pytest.fixture
def running() -> Iterator[Callable[[Supervisor], Running]]:
    started: list[Supervisor] = []

    def start(sup: Supervisor) -> Running:
        started.append(sup)
        sup.start()
        return Running(sup)

    yield start
    for sup in started:
        if not sup.stopping:
            sup.stop()


def event_ids(root: Path) -> set[int]:
    with raw_db(root, read_only=True) as db:
        return {row[0] for row in db.execute("SELECT id FROM events")}


class Hooks:
    """A webhook endpoint on loopback: the first delivery attempt gets HTTP 500 (to be retried), the rest 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = 500 if not hooks.received else 200
                hooks.received.append(({k.lower(): v for k, v in self.headers.items()}, body, code))
                self.send_response(code)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kuzet"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_live_cameras_commit_as_they_go_and_publish_everywhere(
    tmp_path: Path,
    faces_dir: Path,
    rtsp: RtspServer,
    mosquitto: Broker,
    silent_port: int,
    running: Callable[[Supervisor], Running],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "data"
    hooks = Hooks()
    monkeypatch.setenv("KZ_TEST_BROKER_PASS", mosquitto.password)
    config = {
        "ingest": {"open_timeout_s": 1.5},
        "cameras": [
            {
                "name": "stage",
                "source": rtsp.url("stage"),
                "purpose": PURPOSE,
                "record": {"mode": "events", "segment_s": 2, "pre_roll_s": 1, "post_roll_s": 1},
            },
            {"name": "dead", "source": f"rtsp://127.0.0.1:{silent_port}/never", "purpose": PURPOSE},
        ],
        "run": {
            "reconnect_initial_s": 0.3,
            "reconnect_max_s": 1.0,
            "failed_after": 2,
            "metrics_token": "secret:prom",
            "mqtt": {
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "username": "secret:broker_user",
                "password": "env:KZ_TEST_BROKER_PASS",
            },
            "webhooks": [
                {"url": f"{hooks.url}?key=hook-path-secret", "secret": "secret:hook", "kinds": ["event", "camera"]}
            ],
        },
    }
    svc, admin = make_service(root, config, faces_dir)
    write_secrets(root, {"prom": "metrics-token-1", "broker_user": mosquitto.user, "hook": "hook-key-1"})

    messages: list[tuple[str, bytes, bool]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.username_pw_set(mosquitto.user, mosquitto.password)
    sub.on_message = lambda c, u, m: messages.append((m.topic, m.payload, m.retain))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("kuzet/#", qos=1)
    sub.loop_start()
    try:
        run = running(Supervisor(svc.services, admin, secrets=svc.secrets()))
        run.until(lambda: run.cam("stage").events >= 1, 90, "a committed match event on the stage camera")
        assert event_ids(root)  # committed while the service runs, not when it stops
        run.until(lambda: any(t == "kuzet/events/stage" for t, _, _ in messages), 20, "the event over MQTT")
        run.until(lambda: run.cam("dead").state == "failed", 30, "the silent camera to show as failed")
        assert "no answer within 1.5 s" in run.cam("dead").reason
        assert run.cam("stage").frames_analysed > 0  # one dead camera does not stall another
        run.until(lambda: sum(code == 200 for _, _, code in hooks.received) >= 2, 30, "webhook deliveries")

        # /metrics renders what the service wrote
        written = read_status(root)
        text = render(written).decode()
        stage = next(c for c in written.cameras if c.camera == "stage")
        assert stage.frames_analysed > 0
        assert f'kuzet_frames_analysed_total{{camera="stage"}} {float(stage.frames_analysed)}' in text
        assert 0 < stage.frames_followed < stage.frames_analysed  # tracked faces followed between full passes
        assert f'kuzet_frames_followed_total{{camera="stage"}} {float(stage.frames_followed)}' in text
        assert 'kuzet_camera_state{camera="dead",state="failed"} 1.0' in text
        assert svc.metrics_token_ok("metrics-token-1") and not svc.metrics_token_ok("guess")

        # the camera wall: the live camera leaves a redacted picture; the dead one none
        run.until(lambda: wall_path(root, "stage").is_file(), 20, "the stage camera's wall picture")
        picture = cv2.imdecode(np.frombuffer(wall_path(root, "stage").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None and picture.shape[1] <= 640
        assert wall_path(root, "stage").stat().st_mode & 0o077 == 0
        assert not wall_path(root, "dead").exists()
        seen = CenterFaceDetector().detect(picture).boxes
        assert len(seen) == 0, f"a face is recognisable on the wall picture: {seen}"
    finally:
        run.sup.stop()
        time.sleep(0.5)
        sub.loop_stop()
        sub.disconnect()

    event = next(json.loads(p) for t, p, _ in messages if t == "kuzet/events/stage")
    assert event["data"]["identity"] == "Lin-Manuel Miranda" and event["data"]["score"] > 0.9
    # from the outbox: the same delivery id over MQTT and to the webhook, for receivers to drop repeats
    assert event["delivery"] in {h["x-kuzet-delivery"] for h, _, _ in hooks.received}
    states = [json.loads(p)["data"]["state"] for t, p, _ in messages if t == "kuzet/cameras/stage/status"]
    assert "up" in states and states[-1] == "stopped"
    assert [p for t, p, _ in messages if t == "kuzet/status"][-1] == b"offline"

    # every webhook body is signed; the refused first attempt was retried with the same delivery id
    first_headers = hooks.received[0][0]
    # ordered delivery: the refused delivery is retried before anything else is sent
    assert hooks.received[1][0]["x-kuzet-delivery"] == first_headers["x-kuzet-delivery"]
    for headers, body, _ in hooks.received:
        ts, sig = headers["x-kuzet-timestamp"], headers["x-kuzet-signature"]
        assert verify_signature("hook-key-1", ts, body, sig)
        assert not verify_signature("hook-key-1", ts, body.replace(b'"kind"', b'"kinD"'), sig)

    # event-triggered recording: encrypted, playable segments around the events. Segments are cut at the first key
    # frame after segment_s (2 s); only the last one of a connection, closed when the service stops, may be shorter.
    recordings = sorted((root / "media" / "recordings" / "stage").rglob("*.mp4.enc"))  # names sort by start time
    assert recordings
    frames = []
    for i, rec in enumerate(recordings):
        plain = tmp_path / f"segment-{i}.mp4"
        plain.write_bytes(svc.media.read_encrypted(rec.relative_to(root / "media").as_posix(), cipher=svc.cipher))
        with av.open(str(plain)) as c:
            frames.append(sum(1 for _ in c.decode(video=0)))
    assert all(n >= 1 for n in frames), frames  # every kept segment plays
    final = next(c for c in read_status(root).cameras if c.camera == "stage")
    connections = 1 + final.reconnects + final.worker_restarts
    short = sum(n <= 10 for n in frames[:-1])  # whole segments: 2 s of a 25 frames/s camera, but for the last ones
    assert short <= connections - 1, (frames, connections)  # of connections that ended (the test server loops)
    assert not list((root / "run" / "cache" / "stage").glob("*.mp4"))
    listed = svc.recordings(admin, camera="stage")
    assert {r.path for r in listed} == {p.relative_to(root / "media").as_posix() for p in recordings}
    with pytest.raises(PolicyRefusal, match="justification"):
        svc.recording_export(admin, listed[0].path, tmp_path / "x.mp4", unredacted=False, justification="")
    with pytest.raises(PermissionDenied, match="unredacted"):
        svc.recording_export(admin, listed[0].path, tmp_path / "x.mp4", unredacted=True, justification="case 17/2026")
    biggest = max(listed, key=lambda r: r.bytes)
    svc.recording_export(admin, biggest.path, tmp_path / "red.mp4", unredacted=False, justification="case 17/2026")
    (tmp_path / "orig.mp4").write_bytes(svc.media.read_encrypted(biggest.path, cipher=svc.cipher))
    with av.open(str(tmp_path / "red.mp4")) as red, av.open(str(tmp_path / "orig.mp4")) as orig:
        frames = sum(1 for _ in red.decode(video=0))
        assert frames > 10 and frames == sum(1 for _ in orig.decode(video=0))  # redacted by default, every frame

    started = svc.audit_log(admin, action="service.started")[-1]
    assert "hook-path-secret" not in json.dumps(started.details)  # a token in a webhook URL never reaches the ledger
    report = svc.audit_verify(None)
    assert report.ok, report.problem
    actions = [e.action for e in svc.audit_log(admin, limit=10_000)]
    assert {"service.started", "service.stopped", "analysis.live", "recording.export"} <= set(actions)
    assert actions.count("recording.export_refused") == 2
    secrets_text = "metrics-token-1 hook-key-1 " + mosquitto.password
    logged = (root / "run" / "status.json").read_text() + json.dumps([str(e) for e in svc.audit_log(admin)])
    assert not any(s in logged for s in secrets_text.split())


def test_a_camera_wall_picture_is_made_while_someone_watches_it(
    tmp_path: Path, rtsp: RtspServer, running: Callable[[Supervisor], Running]
) -> None:
    root = tmp_path / "data"
    config = {
        "cameras": [{"name": "road", "source": rtsp.url("road"), "purpose": PURPOSE}],
        "run": {"wall_snapshot_s": 1, "wall_idle_s": 3600},  # no idle picture within the test: only watched ones
    }
    svc, admin = make_service(root, config)
    run = running(Supervisor(svc.services, admin, secrets=svc.secrets()))
    run.until(lambda: wall_path(root, "road").is_file(), 60, "the first wall picture")
    first = wall_path(root, "road").stat().st_mtime
    run.until(lambda: run.cam("road").frames_analysed > 30, 30, "3 s of analysis")
    # cars move, nobody's face shows: YuNet's search says so and CenterFace does not run (counted for the status)
    assert run.cam("road").frames_searched > 0
    assert wall_path(root, "road").stat().st_mtime == first  # nobody watches: no new picture
    jpeg, taken = svc.services.cameras.snapshot(admin, "road")  # the wall asks for it
    assert taken == first and jpeg == wall_path(root, "road").read_bytes()
    run.until(lambda: wall_path(root, "road").stat().st_mtime > first, 10, "a live picture for the watcher")


def test_camera_reconnects_after_the_server_dies_and_after_a_stall(
    tmp_path: Path, rtsp: RtspServer, running: Callable[[Supervisor], Running]
) -> None:
    root = tmp_path / "data"
    config = {
        "ingest": {"open_timeout_s": 2},
        "cameras": [{"name": "road", "source": rtsp.url("road"), "analytics": ["traffic"], "purpose": PURPOSE}],
        "run": {"reconnect_initial_s": 0.3, "reconnect_max_s": 1.0, "stall_timeout_s": 2.0, "failed_after": 50},
    }
    svc, admin = make_service(root, config)
    run = running(Supervisor(svc.services, admin, secrets=svc.secrets()))

    def road() -> CameraStatus:
        return run.cam("road")

    run.until(lambda: road().state == "up" and road().frames_analysed > 10, 60, "the road camera up")

    rtsp.kill()  # mid-stream, no goodbye
    run.until(lambda: road().state in ("reconnecting", "failed"), 20, "the camera to notice the server died")
    before = road().frames_analysed
    time.sleep(1.5)
    assert road().frames_analysed == before
    rtsp.start()  # same port
    run.until(lambda: road().state == "up" and road().frames_analysed > before + 10, 30, "analytics to resume")

    rtsp.freeze()  # the connection stays open, nothing arrives
    run.until(lambda: road().state == "stalled", 20, "the stall to be detected")
    assert "no frame for" in road().reason
    stalled_reconnects = road().reconnects
    rtsp.thaw()
    resumed = road().frames_analysed
    run.until(lambda: road().state == "up" and road().frames_analysed > resumed + 10, 40, "recovery after the stall")
    assert road().reconnects > stalled_reconnects
    assert road().worker_restarts == 0  # all of this was handled inside the worker


def test_a_killed_worker_is_restarted_and_nothing_it_committed_is_lost(
    tmp_path: Path, faces_dir: Path, rtsp: RtspServer, running: Callable[[Supervisor], Running]
) -> None:
    root = tmp_path / "data"
    config = {
        "cameras": [{"name": "stage", "source": rtsp.url("stage"), "purpose": PURPOSE}],
        "run": {"reconnect_initial_s": 0.3, "reconnect_max_s": 1.0},
    }
    svc, admin = make_service(root, config, faces_dir)
    run = running(Supervisor(svc.services, admin, secrets=svc.secrets()))
    run.until(lambda: run.cam("stage").events >= 1, 90, "a committed event")
    committed = event_ids(root)
    pid = run.cam("stage").pid
    frames = run.cam("stage").frames_analysed
    os.kill(pid, signal.SIGKILL)
    run.until(lambda: run.cam("stage").worker_restarts == 1, 20, "the supervisor to notice")
    assert "killed by signal 9" in run.cam("stage").reason
    run.until(lambda: run.cam("stage").state == "up" and run.cam("stage").pid != pid, 60, "a new worker for the camera")
    run.until(lambda: run.cam("stage").frames_analysed > frames + 10, 30, "analysis to go on")
    assert committed <= event_ids(root)
    carried = run.sup.slots["stage"].carried
    assert carried is not None and carried.frames_analysed >= frames  # the killed worker's counts carry over
    run.sup.stop()
    assert svc.audit_verify(None).ok


def test_service_killed_while_writing_loses_nothing_committed(
    tmp_path: Path, faces_dir: Path, rtsp: RtspServer
) -> None:
    root = tmp_path / "data"
    config = {
        "cameras": [
            {"name": "stage", "source": rtsp.url("stage"), "purpose": PURPOSE},
            {"name": "road", "source": rtsp.url("road"), "analytics": ["traffic"], "purpose": PURPOSE},
        ],
        "run": {
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 0.5,
            "stats_interval_s": 0.5,
            "metrics_token": "secret:prom",
        },
    }
    svc, _ = make_service(root, config, faces_dir)
    write_secrets(root, {"prom": "scrape-me-1"})
    _, token = svc.login("admin", PASSWORD)
    svc.close()
    config_file = tmp_path / "live.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "KUZET_TOKEN": token}
    kuzet = [str(Path(sys.executable).with_name("kuzet")), "--data-dir", str(root)]
    log_file = tmp_path / "run.log"

    def start(*extra: str) -> subprocess.Popen[bytes]:
        with log_file.open("ab") as log:
            return subprocess.Popen(
                [*kuzet, "run", "--config", str(config_file), *extra],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    proc = start()
    try:
        wait_until(lambda: len(event_ids(root)) >= 2, 120, "two committed events")
        committed = event_ids(root)
        # kill while it writes: the road camera commits its counters twice a second, the stage camera its events
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with raw_db(root) as db:
        if not db.postgres:  # SQLite's own check of its file; PostgreSQL recovers from its WAL
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert committed <= event_ids(root)
    after_kill = Kuzet(root, KuzetConfig.model_validate(config))
    report = after_kill.audit_verify(None)
    assert report.ok, report.problem
    after_kill.close()

    port = free_port()
    proc = start("--serve", "--port", str(port))  # again over the same data, with the API in the same process
    try:
        wait_until(
            lambda: (
                any(c.state == "up" and c.camera == "stage" for c in read_status(root).cameras)
                and read_status(root).pid == proc.pid
            ),
            90,
            "the restarted service up",
        )
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url).status_code == 401
        metrics = httpx.get(url, headers={"Authorization": "Bearer scrape-me-1"})
        assert metrics.status_code == 200 and 'kuzet_frames_analysed_total{camera="stage"}' in metrics.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    again = Kuzet(root, KuzetConfig.model_validate(config))
    assert again.audit_verify(None).ok
    assert committed <= event_ids(root)
    assert read_status(root).state == "stopped"
    again.close()


def test_every_live_camera_states_a_lawful_purpose(tmp_path: Path) -> None:
    cams: list[dict[str, str]] = [{"name": "gate", "source": "rtsp://127.0.0.1:9/x"}]
    svc, admin = make_service(tmp_path / "a", {"cameras": cams})

    def supervise(cameras: list[dict[str, str]]) -> None:
        svc.ctx.config = KuzetConfig.model_validate({"cameras": cameras})
        Supervisor(svc.services, admin, secrets=svc.secrets())

    with pytest.raises(ConfigError, match="state no purpose"):
        supervise(cams)
    cams[0]["purpose"] = "identify protesters at the square"
    with pytest.raises(PolicyRefusal, match="prohibited label"):
        supervise(cams)
    refused = svc.audit_log(admin, action="service.refused")
    assert [e.object for e in refused] == ["camera:gate"]
    with pytest.raises(ConfigError, match="no live stream URL"):
        supervise([{"name": "f", "source": "/videos/a.mp4", "purpose": "x"}])
    svc.close()
