"""The example configs run live, as an integrator would start them, and the operations room shows them.

`kuzet run --serve` over `examples/live-cameras.yaml` with `examples/car-park.yaml`'s camera added: the faces camera
(gate-2) and the car park stream from the RTSP test server, the ring-road camera never answers. In real Chromium the
wall shows the working cameras' pictures (the car park's with its counting line drawn) and why ring-road is down,
the map colours each camera by its state, and the car-park passages reach the traffic page and its chart within
seconds of happening.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml
from playwright.sync_api import Browser, expect

from kuzet.config.models import KuzetConfig
from kuzet.services.container import build_services
from kuzet.store.status import read_status, wall_path
from tests.conftest import PASSWORD, wait_until
from tests.runtime.conftest import rtsp, silent_port
from tests.support.servers import RtspServer, free_port
from tests.web.conftest import sign_in

pytestmark = pytest.mark.store
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
__all__ = ["rtsp", "silent_port"]  # the fixtures, used by name


def _config(rtsp: RtspServer, silent_port: int) -> dict[str, Any]:
    """The two example configs as one, their sources pointed at the test cameras; the integrations left out."""
    live = yaml.safe_load((EXAMPLES / "live-cameras.yaml").read_text())
    park = yaml.safe_load((EXAMPLES / "car-park.yaml").read_text())["cameras"][0]
    gate, ring = live["cameras"]
    gate["source"] = rtsp.url("stage")
    ring["source"] = f"rtsp://127.0.0.1:{silent_port}/stream1"  # a camera that accepts and never answers
    park |= {"source": rtsp.url("road"), "purpose": "car park occupancy and speeds", "fps": 10}
    park["position"] = {"lat": 43.2480, "lon": 76.9100}
    live["cameras"].append(park)
    for integration in ("mqtt", "webhooks"):  # tested against real servers in tests/runtime/test_run.py
        del live["run"][integration]
    live["run"] |= {"reconnect_initial_s": 0.3, "reconnect_max_s": 1.0, "failed_after": 2, "stats_interval_s": 0.5}
    live["ingest"] = {"open_timeout_s": 1.5}
    return dict(live)


@pytest.fixture
def live_room(tmp_path: Path, rtsp: RtspServer, silent_port: int) -> Iterator[tuple[str, Path, str]]:
    """`kuzet run --serve` on the examples; yields the web app's base URL, the data directory and a token."""
    root = tmp_path / "data"
    config = _config(rtsp, silent_port)
    svc = build_services(root, KuzetConfig.model_validate(config))
    admin = svc.users.init_admin("admin", PASSWORD)
    svc.users.add(admin, "olga", PASSWORD, ["operator"])
    _, token = svc.users.login("admin", PASSWORD)
    svc.close()
    secrets = root / "secrets.yaml"
    secrets.write_text(yaml.safe_dump({"gate2": "g2-pass", "ring_road": "rr-pass", "prometheus": "scrape-1"}))
    secrets.chmod(0o600)
    config_file = tmp_path / "live.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    env = {**os.environ, "KUZET_TOKEN": token, "GATE2_USER": "gate2"}
    kuzet = str(Path(sys.executable).with_name("kuzet"))
    with (tmp_path / "run.log").open("wb") as log:
        proc = subprocess.Popen(
            [kuzet, "--data-dir", str(root), "run", "--config", str(config_file), "--serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            return httpx.get(f"{base}/login", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # fails below, with the log

    try:
        wait_until(serving, 120, "kuzet run --serve to answer")
        assert proc.poll() is None, (tmp_path / "run.log").read_text()
        yield base, root, token
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _state(root: Path, camera: str) -> str:
    return next((c.state for c in read_status(root).cameras if c.camera == camera), "")


class PassageWatch:
    """Polls the passages API twice a second from the start, noting how long after its crossing each was first seen.

    The crossing's wall-clock time comes from the camera's status: the stream's clock at its latest frame, and when
    that frame came. A worker reports its status once a second, the first time when it connects (before any frame):
    a passage seen before the status has a frame is timed with the first status that has one.
    """

    def __init__(self, base: str, root: Path, token: str) -> None:
        self.base, self.root, self.token = base, root, token
        self.late: dict[int, float] = {}
        self._seen: dict[int, tuple[float, float]] = {}
        """Passage id: (wall-clock time first seen, its crossing on the stream's clock)."""
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=10) as c:
            while not self._stop.wait(0.5):
                got = c.get("/api/traffic/passages", params={"camera": "car-park", "limit": 50})
                if got.status_code != 200:
                    self.problems.append(got.text)
                    continue
                now = time.time()
                for p in got.json()["items"]:
                    self._seen.setdefault(p["id"], (now, p["time_s"]))
                cam = next((s for s in read_status(self.root).cameras if s.camera == "car-park"), None)
                if cam is None or not cam.last_frame_at:  # no frame reported yet: no clock to time crossings by
                    continue
                for pid, (seen, crossed) in self._seen.items():
                    if pid not in self.late:
                        self.late[pid] = seen - (cam.last_frame_at - (cam.stream_time - crossed))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_the_example_cameras_on_the_wall_the_map_and_the_traffic_page(
    live_room: tuple[str, Path, str], browser: Browser
) -> None:
    base, root, token = live_room
    watch = PassageWatch(base, root, token)
    page = sign_in(browser, base, "olga")
    page.goto(f"{base}/traffic")
    expect(page.locator("#traffic-chart[data-total]")).to_have_count(1, timeout=20_000)  # the chart has drawn

    wait_until(lambda: _state(root, "ring-road") == "failed", 60, "ring-road shown as failed")
    wait_until(lambda: wall_path(root, "car-park").is_file() and wall_path(root, "gate-2").is_file(), 90, "pictures")

    # the car park's picture carries its counting line (amber, across the middle of the frame), drawn after redaction
    picture = cv2.imdecode(np.frombuffer(wall_path(root, "car-park").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    row = picture[picture.shape[0] // 2 - 3 : picture.shape[0] // 2 + 4].reshape(-1, 3).astype(int)
    amber = (row[:, 2] > 200) & (row[:, 1] > 150) & (row[:, 0] < 90)  # BGR as OpenCV decodes
    assert amber.mean() > 0.3, "the counting line is not drawn on the wall picture"

    # passages: each in the API within seconds of the car crossing, and the chart redrawn without a reload
    wait_until(lambda: len(watch.late) >= 2, 120, "two car-park passages")
    watch.stop()
    print("seconds from crossing to the API:", sorted(watch.late.values()))
    assert watch.problems == [] and max(watch.late.values()) < 10, f"passages reached the API late: {watch.late}"
    chart = "#traffic-chart"  # fetched again every 5 s by the page itself
    wait_until(lambda: int(page.get_attribute(chart, "data-total") or 0) >= 2, 15, "the chart with the passages")
    page.reload()
    expect(page.locator("tr[id^='passage-']").first).to_be_visible()

    # the wall: pictures of the cameras that are up (gate-2 may be between connections when the page loads: the
    # tiles follow the cameras' states), and why ring-road is not
    page.goto(f"{base}/wall")
    for camera in ("gate-2", "car-park"):
        shown = f"document.querySelector('#tile-{camera} img.live')?.naturalWidth > 0"  # polled: the policy has no eval
        wait_until(lambda js=shown: bool(page.evaluate(js)), 45, f"{camera}'s picture on the wall")
    expect(page.locator("#tile-ring-road")).to_contain_text("failed")
    expect(page.locator("#tile-ring-road .down")).to_contain_text("no answer within 1.5 s")

    # the map: every camera placed by its config, coloured by its state
    fill: dict[str, str | None] = {}

    def coloured() -> bool:  # gate-2 is between connections for a moment each time its clip ends
        page.goto(f"{base}/map")
        expect(page.locator("#map[data-ready='1']")).to_have_count(1, timeout=15_000)
        expect(page.locator("path[data-camera]")).to_have_count(3)
        for name in ("gate-2", "ring-road", "car-park"):
            fill[name] = page.get_attribute(f"path[data-camera='{name}']", "fill")
        return fill["gate-2"] == fill["car-park"] == "#2f855a" and fill["ring-road"] == "#c53030"

    wait_until(coloured, 45, "the map's colours: two cameras up, ring-road failed", interval=1)

    # the system page: per camera CPU, from the worker process's own clock
    assert next(c.cpu_s for c in read_status(root).cameras if c.camera == "car-park") > 0
    page.goto(f"{base}/system")
    expect(page.locator("#camera-health")).to_contain_text("CPU (% of a core)")
    expect(page.locator("#health-car-park")).to_be_visible()
    page.context.close()
