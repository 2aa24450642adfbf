"""Per-camera status of `kuzet run`, shared through `DATA_DIR/run/status.json` (the API and `kuzet status` read it)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from kuzet.core.errors import NotFoundError
from kuzet.store.files import FILE_MODE, private_dir, write_private

STATES = ("starting", "up", "reconnecting", "stalled", "failed", "restarting", "stopped")
"""starting: connecting for the first time; up: frames arrive; reconnecting: waiting to try again (reason says why);
stalled: the stream stopped sending without closing (reopened next); failed: `run.failed_after` attempts in a row
failed, or the worker keeps dying (kuzet keeps trying), or the camera refused its credentials `run.auth_attempts`
times (reason `wrong credentials: ...`; not tried again until they change); restarting: the worker process died and
is being replaced; stopped: `kuzet run` ended."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the analysis latency histogram; one more bucket counts everything slower."""

COUNTERS = (
    "frames_decoded",
    "frames_analysed",
    "frames_dropped",
    "frames_gated",
    "frames_searched",
    "frames_regions",
    "frames_followed",
    "reconnects",
    "worker_restarts",
    "events",
    "alerts",
    "passages",
    "violations",
    "segments_kept",
    "latency_count",
)


@dataclass(slots=True)
class CameraStatus:
    """One camera's state and counters (counters grow over the whole `kuzet run`, across reconnects and restarts)."""

    camera: str
    state: str = "starting"
    reason: str = ""
    since: float = field(default_factory=time.time)
    """Unix time the state began."""
    source: str = ""
    """The stream URL without credentials."""
    pid: int = 0
    node: str = ""
    """The machine (and Ray node) the camera's worker runs on."""
    decoder: str = ""
    """How the current connection decodes the stream (`h264 software, 2 slice threads`, `h264 on NVIDIA NVDEC
    (cuda)`, with any skipping of non-reference frames); empty before the first connection."""
    heartbeat: float = field(default_factory=time.time)
    """Unix time the worker last said it was alive."""
    last_frame_at: float = 0.0
    stream_time: float = 0.0
    """The latest analysed frame's time on the stream's own clock (seconds), taken at `last_frame_at`."""
    cpu_s: float = 0.0
    """CPU seconds the camera's worker process has used (decoding and analysis), across restarts."""
    run_id: int | None = None
    queue_depth: int = 0
    frames_decoded: int = 0
    frames_analysed: int = 0
    frames_dropped: int = 0
    frames_gated: int = 0
    """Analysed frames on which the motion gate skipped the face detector."""
    frames_searched: int = 0
    """Analysed frames on which the face search (YuNet, `face_detector.search`) found no face, so the face detector
    did not run."""
    frames_regions: int = 0
    """Analysed frames on which the face detector looked only where the frame moved (`motion_gate.regions`)."""
    frames_followed: int = 0
    """Analysed frames on which the face detector looked only as finely as the open tracks needed
    (`face_detector.tracked_share`)."""
    reconnects: int = 0
    worker_restarts: int = 0
    events: int = 0
    alerts: int = 0
    passages: int = 0
    violations: int = 0
    segments_kept: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    latency_count: int = 0

    def set_state(self, state: str, reason: str = "") -> bool:
        """Change state; True when it changed (integrations publish changes only)."""
        if state not in STATES:
            raise ValueError(f"unknown camera state {state!r}")
        changed = state != self.state or reason != self.reason
        if state != self.state:
            self.since = time.time()
        self.state, self.reason = state, reason
        return changed

    def observe_latency(self, seconds: float) -> None:
        """Count one frame's analysis time."""
        i = next((k for k, bound in enumerate(LATENCY_BUCKETS) if seconds <= bound), len(LATENCY_BUCKETS))
        self.latency_buckets[i] += 1
        self.latency_sum += seconds
        self.latency_count += 1

    def plus(self, earlier: CameraStatus) -> CameraStatus:
        """These counters added to those of an earlier worker of the same camera (monotonic across restarts)."""
        out = CameraStatus(**asdict(self))
        for name in COUNTERS:
            setattr(out, name, getattr(self, name) + getattr(earlier, name))
        out.latency_sum = self.latency_sum + earlier.latency_sum
        out.cpu_s = self.cpu_s + earlier.cpu_s
        out.latency_buckets = [a + b for a, b in zip(self.latency_buckets, earlier.latency_buckets, strict=True)]
        return out

    def payload(self) -> dict[str, str | int | float | None]:
        """What MQTT and webhooks say about the camera."""
        return {
            "camera": self.camera,
            "state": self.state,
            "node": self.node,
            "reason": self.reason,
            "since": round(self.since, 3),
            "frames_analysed": self.frames_analysed,
            "reconnects": self.reconnects,
        }


@dataclass(slots=True)
class ServiceStatus:
    """What `kuzet run` writes every second."""

    pid: int
    started: float
    updated: float
    state: str
    cameras: list[CameraStatus]
    mqtt_published: int = 0
    mqtt_connected: bool = False
    webhooks_delivered: int = 0
    webhooks_failed: int = 0
    detector_pid: int = 0
    """The shared detector's process (`run.shared_detector`); 0 without one."""
    detector_frames: int = 0
    detector_calls: int = 0
    """Model calls of the shared detector: fewer than its frames when cameras' frames were batched."""
    detector_largest_batch: int = 0
    detector_restarts: int = 0


def wall_path(data_dir: Path, camera: str) -> Path:
    """Where `kuzet run` keeps a camera's latest redacted picture for the camera wall."""
    if not camera or "/" in camera or "\\" in camera or camera.startswith("."):
        raise NotFoundError(f"no camera named {camera!r}", hint="see the camera list for the names")
    return data_dir / "run" / "wall" / f"{camera}.jpg"


def write_wall_frame(data_dir: Path, camera: str, jpeg: bytes) -> None:
    """Replace a camera's wall picture (owner-only, atomically: a reader never sees half a picture)."""
    path = wall_path(data_dir, camera)
    private_dir(path.parent)
    write_private(path, jpeg)


WALL_WATCH_S = 30.0
"""A camera's wall picture is watched when it was asked for in the last this many seconds (the wall asks every 3)."""


def mark_wall_watched(data_dir: Path, camera: str) -> None:
    """Note that someone is watching a camera's wall picture, so `kuzet run` keeps it live (`wall_snapshot_s`).

    The mark is an empty owner-only file whose time is the last request's; two requests at once both succeed.

    Raises:
        OSError: The mark could not be written (callers treat marking as best effort).
    """
    path = wall_path(data_dir, camera).with_suffix(".watched")
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    os.utime(path)


def wall_watched(data_dir: Path, camera: str, *, now: float) -> bool:
    """Whether a camera's wall picture was asked for in the last `WALL_WATCH_S` seconds (Unix time `now`)."""
    try:
        seen = wall_path(data_dir, camera).with_suffix(".watched").stat().st_mtime
    except FileNotFoundError:
        return False
    return now - seen <= WALL_WATCH_S


def read_wall_frame(data_dir: Path, camera: str) -> tuple[bytes, float]:
    """A camera's latest wall picture and when it was taken (Unix time).

    Raises:
        NotFoundError: The camera has no picture yet (it is not live, or not up).
    """
    path = wall_path(data_dir, camera)
    try:
        return path.read_bytes(), path.stat().st_mtime
    except FileNotFoundError:
        raise NotFoundError(f"camera {camera!r} has no live picture", hint="it is not running, or not up") from None


def status_path(data_dir: Path) -> Path:
    """Where `kuzet run` keeps its status."""
    return data_dir / "run" / "status.json"


def write_status(data_dir: Path, status: ServiceStatus) -> None:
    """Replace the status file atomically."""
    path = status_path(data_dir)
    private_dir(path.parent)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), FILE_MODE)
        f.write(json.dumps(asdict(status), sort_keys=True))
    os.replace(tmp, path)


def read_status(data_dir: Path) -> ServiceStatus:
    """The last status `kuzet run` wrote.

    Raises:
        NotFoundError: `kuzet run` has never run on this data directory.

    """
    path = status_path(data_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError("kuzet run has not run on this data directory", hint="start it: kuzet run") from None
    names = {f.name for f in fields(CameraStatus)}
    cameras = [CameraStatus(**{k: v for k, v in c.items() if k in names}) for c in data.pop("cameras", [])]
    known = {f.name for f in fields(ServiceStatus)}
    return ServiceStatus(cameras=cameras, **{k: v for k, v in data.items() if k in known})
