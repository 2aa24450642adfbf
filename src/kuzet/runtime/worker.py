"""One live camera in its own process: connect, analyse, commit, reconnect, forever (until told to stop).

A worker never shares memory with another camera's: a crash, a hang or a leak stays in its process, and the
supervisor (`runtime.supervisor`) restarts it. Everything the worker decides is committed as it is decided (one
audited transaction per batch), so killing the process loses at most the frame being analysed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import parent_process
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kuzet.config.models import KuzetConfig, RunConfig
from kuzet.config.secrets import camera_url
from kuzet.core.accel import share_cores
from kuzet.core.errors import InputError, KuzetError, StreamAuthError
from kuzet.ingest.sources import redact_url
from kuzet.store.files import private_dir, write_private
from kuzet.store.status import CameraStatus

if TYPE_CHECKING:
    from kuzet.core.types import Image, User
    from kuzet.ingest.live import LiveStream
    from kuzet.pipeline.faces import FaceStats
    from kuzet.pipeline.traffic import TrafficAnalyzer
    from kuzet.runtime.recording import MainStream, RecordingKeeper
    from kuzet.services.session import AnalysisSession

log = logging.getLogger("kuzet.run")

HEARTBEAT_S = 1.0
AUTH_RECHECK_S = 5.0
"""While a camera's credentials are locked out, how often the worker looks for changed secrets."""
StopCheck = Callable[[], bool]

_DETECTOR_COUNTS = {
    "frames_gated": "gated_frames",
    "frames_searched": "searched_frames",
    "frames_regions": "region_frames",
    "frames_followed": "followed_frames",
}
"""`CameraStatus` counter: the `FaceStats` count it adds up across sessions."""


def _detector_counts(stats: FaceStats) -> dict[str, int]:
    """`stats`' counts of frames by how the face detector saw them."""
    return {name: getattr(stats, name) for name in _DETECTOR_COUNTS.values()}


def _add_detector_counts(st: CameraStatus, stats: FaceStats, before: dict[str, int]) -> None:
    """Add to `st` the frames `stats` counted since `before` (`_detector_counts`)."""
    for status_name, stats_name in _DETECTOR_COUNTS.items():
        setattr(st, status_name, getattr(st, status_name) + getattr(stats, stats_name) - before[stats_name])


class MessageQueue(Protocol):
    """Where a worker sends status and notices (a multiprocessing queue)."""

    def put(self, obj: object, block: bool = ..., timeout: float | None = ...) -> None:
        """Send one message."""
        ...


class StopFlag(Protocol):
    """Set by the supervisor when every worker should finish (a multiprocessing event)."""

    def is_set(self) -> bool:
        """Whether to stop."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker process needs (it is pickled to the new process: keep it small)."""

    data_dir: str
    config_json: str
    camera: str
    actor: str
    url: str = field(repr=False)
    """Stream URL with credentials: lives only in memory, never logged or shown (logs use the camera's `source`)."""
    fps: float
    origin: str
    sharing: int = 1
    """Cameras running at once on this machine: each worker's model threads default to its share of the cores."""
    node: str = ""
    """Where the worker runs (a Ray actor's node); empty: this machine's name."""
    record_url: str = field(default="", repr=False)
    """The main stream's URL with credentials, when the camera names a `record_source` (else empty)."""
    detector: str = ""
    """The shared detector's socket (`run.shared_detector`), else empty: the worker runs its own."""
    detector_key: bytes = field(default=b"", repr=False)
    """The key that socket asks for (this run's own, never written anywhere)."""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A worker's full status, sent every heartbeat and on every change."""

    status: CameraStatus


class Backoff:
    """Exponential backoff with jitter: initial, 2x, 4x ... up to the maximum, each shortened by a random share."""

    def __init__(self, config: RunConfig, *, rng: random.Random | None = None) -> None:
        self.initial = config.reconnect_initial_s
        self.maximum = config.reconnect_max_s
        self.jitter = config.reconnect_jitter
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """Seconds to wait before the next attempt (and count this failure)."""
        base = min(self.maximum, self.initial * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """A connection worked: start again from the initial wait."""
        self.failures = 0


class AuthLock:
    """Counts a camera's refusals of its credentials, across worker and service restarts, until they change.

    Cameras lock an account after a few wrong passwords, so after `limit` refusals in a row kuzet stops connecting.
    The count is kept in `DATA_DIR/run/auth/CAMERA.json` (owner-only) against a salted, slow digest of the stream
    URL with its credentials (never the credentials themselves): a restart with the same credentials stays locked;
    a changed username, password, secret or URL starts afresh. A connection that opens clears it.
    """

    def __init__(self, data_dir: Path, camera: str, *, limit: int, stream: str = "") -> None:
        # a camera's main stream (`stream="main"`) has its own count in a folder of its own
        self.path = data_dir / "run" / "auth" / stream / f"{camera}.json"
        self.limit = limit

    def _read(self) -> dict[str, str | int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _digest(url: str, salt: bytes) -> str:
        return hashlib.pbkdf2_hmac("sha256", url.encode(), salt, 100_000).hex()

    def refusals(self, url: str) -> int:
        """Refusals in a row of these exact credentials (0 when they changed since)."""
        data = self._read()
        try:
            salt = bytes.fromhex(str(data["salt"]))
            same = self._digest(url, salt) == data["digest"]
            return int(data["refusals"]) if same else 0
        except (KeyError, ValueError):
            return 0

    def locked(self, url: str) -> bool:
        """Whether these credentials were refused `limit` times: do not try them again."""
        return self.refusals(url) >= self.limit

    def refused(self, url: str) -> int:
        """Count one refusal; returns the count."""
        count = self.refusals(url) + 1
        salt = os.urandom(16)
        record = {"salt": salt.hex(), "digest": self._digest(url, salt), "refusals": count}
        private_dir(self.path.parent)
        write_private(self.path, json.dumps(record).encode())
        return count

    def clear(self) -> None:
        """The credentials worked."""
        self.path.unlink(missing_ok=True)


def worker_main(spec: WorkerSpec, messages: MessageQueue, stop: StopFlag) -> None:
    """Process entry point: run one camera until `stop` is set or SIGTERM arrives."""
    quit_now = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the supervisor decides
    signal.signal(signal.SIGTERM, lambda *_: quit_now.set())
    share_cores(spec.sharing)
    CameraWorker(spec, messages, lambda: stop.is_set() or quit_now.is_set()).run()


class CameraWorker:
    """The loop of one camera (runs in the worker process; `run` returns when asked to stop)."""

    def __init__(self, spec: WorkerSpec, messages: MessageQueue, stopping: StopCheck) -> None:
        from kuzet.services.container import build_analysis

        self.spec = spec
        self.messages = messages
        self._stopping = stopping
        self.config = KuzetConfig.model_validate_json(spec.config_json)
        self.run_config = self.config.run
        self.analysis = build_analysis(Path(spec.data_dir), self.config, origin=spec.origin)
        self.ctx = self.analysis.ctx
        self.camera = self.ctx.camera_config(spec.camera)
        if spec.detector and self.config.face_detector.type == "centerface":
            from kuzet.runtime.detector import SharedCenterFace

            self.ctx.models.face_detector = SharedCenterFace(
                self.config.face_detector, spec.detector, spec.detector_key
            )
        self.status = CameraStatus(
            camera=spec.camera,
            source=redact_url(self.camera.source),
            pid=os.getpid(),
            node=spec.node or socket.gethostname(),
        )
        self.backoff = Backoff(self.run_config)
        self.url = spec.url
        """The stream URL with credentials (read again from the secrets while they are locked out)."""
        self.auth = AuthLock(Path(spec.data_dir), spec.camera, limit=self.run_config.auth_attempts)
        self._last_sent = 0.0
        self._cpu0 = time.process_time()
        self._ended = ""
        """Why the last connection ended (after frames had arrived)."""
        self._draining: list[tuple[LiveStream, RecordingKeeper]] = []
        """Closed connections whose decoding thread may still hold a recording segment."""
        self._wall_written = -float("inf")
        """When the last wall picture was left (monotonic seconds)."""
        self._parent = parent_process()
        self.main: MainStream | None = None
        """The camera's main stream (recorded, snapshots cut from it), when it names a `record_source`."""
        self._analysed_up = threading.Event()
        """Set once the analysed stream connected: the main stream, on the same account, tries only then."""
        self._stream: LiveStream | None = None
        """The analysed connection of the moment (its clock maps decisions onto the main stream's)."""
        self.cache_dir = Path(spec.data_dir) / "run" / "cache" / spec.camera
        # Segments left by a worker that was killed are unencrypted and undecided: remove them.
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def stopping(self) -> bool:
        """Asked to stop, or orphaned (the supervisor died without telling us)."""
        return self._stopping() or (self._parent is not None and not self._parent.is_alive())

    def send(self, *, force: bool = False) -> None:
        """Report status (at most once per heartbeat unless forced)."""
        now = time.time()
        if force or now - self._last_sent >= HEARTBEAT_S:
            self.status.heartbeat = now
            self.status.cpu_s = time.process_time() - self._cpu0  # one process (or Ray actor) per camera
            self.messages.put(StatusUpdate(self.status))
            self._last_sent = now

    def state(self, state: str, reason: str = "") -> None:
        """Change state and tell the supervisor (which tells MQTT)."""
        if self.status.set_state(state, reason):
            self.send(force=True)

    def wait(self, seconds: float) -> None:
        """Sleep, still reporting and still stoppable."""
        end = time.monotonic() + seconds
        while not self.stopping() and time.monotonic() < end:
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))
            self._drain()
            self.send()

    def run(self) -> None:
        """Connect, analyse, reconnect until stopped."""
        with self.analysis.uow.read() as r:
            actor = r.users.active(self.spec.actor)
        if "faces" in self.camera.analytics:
            # Load the models before the first connection, so the camera's first seconds are not spent waiting.
            _ = (self.ctx.models.face_detector, self.ctx.models.face_embedder, self.ctx.models.face_extra)
        self.send(force=True)
        if self.spec.record_url:
            self._start_main()
        first = True
        while not self.stopping():
            if self._locked_out():
                continue
            if not first:
                self.status.reconnects += 1
            first = False
            self._ended = ""
            try:
                worked = self._connection(actor)
            except StreamAuthError as exc:
                refusals = self.auth.refused(self.url)
                worked = False
                reason = exc.message
                if refusals >= self.auth.limit:
                    continue  # locked out: said so at the top of the loop
            except KuzetError as exc:  # unreachable camera, busy database, bad camera settings
                worked = False
                reason = exc.message
            else:
                reason = self._ended or ("the stream ended" if worked else "no frames")
            if self.stopping():
                break
            if worked:
                self.backoff.reset()
            delay = self.backoff.next()
            if not worked and self.backoff.failures >= self.run_config.failed_after:
                self.state("failed", f"{self.backoff.failures} attempts failed; last: {reason}; retrying")
            elif self.status.state != "stalled":
                self.state("reconnecting", reason)
            self.wait(delay)
        self._drain(wait_s=5.0)
        if self.main is not None:
            self.status.segments_kept += len(self.main.close())
        self.state("stopped", "kuzet run stopped")
        self.ctx.close()

    def _keeper(self) -> RecordingKeeper:
        """The recorder of this camera's segments (encrypted, under media/recordings)."""
        from kuzet.runtime.recording import RecordingKeeper

        return RecordingKeeper(
            self.spec.camera, self.camera.record, media=self.ctx.media, cipher=self.ctx.cipher, cache_dir=self.cache_dir
        )

    def _start_main(self) -> None:
        """Connect the main stream on its own thread: recorded (when the camera records) and held for snapshots."""
        from kuzet.runtime.recording import MainStream

        keeper = self._keeper() if self.camera.record.mode != "off" else None
        self.main = MainStream(
            self.spec.record_url,
            camera=self.camera,
            ingest=self.config.ingest,
            run=self.run_config,
            keeper=keeper,
            auth=AuthLock(
                Path(self.spec.data_dir), self.spec.camera, limit=self.run_config.auth_attempts, stream="main"
            ),
            fresh_url=lambda: camera_url(self.camera, self.ctx.secrets(), record=True),
            after=self._analysed_up,
        )

    def _up_reason(self, stream: LiveStream) -> str:
        """What `up` says: transport and clock; with a main stream, what is analysed and whether it records."""
        over = f"rtsp over {stream.transport}; " if stream.transport else ""
        reason = f"{over}{stream.clock} clock"
        if self.main is None or stream.size is None:
            return reason
        reason += f"; analysing {stream.size[0]}x{stream.size[1]}"
        main = self.main.size
        if self.main.reason or main is None:
            return f"{reason}; {self.main.reason or 'main stream connecting'}"
        doing = "recording" if self.camera.record.mode != "off" else "snapshots from"
        return f"{reason}; {doing} the main stream ({main[0]}x{main[1]})"

    def _main_picture(self, pts: float) -> tuple[Image, tuple[int, int]] | None:
        """The main stream's picture of an analysed moment (stream time) and the analysed size, when it holds it."""
        stream, main = self._stream, self.main
        if main is None or stream is None or stream.offset is None or stream.size is None:
            return None
        picture = main.picture_at(pts + stream.offset)
        if picture is None:
            log.info("camera %s: the main stream does not hold the moment %.2f s", self.spec.camera, pts)
            return None
        return picture, stream.size

    def _poll_main(self) -> None:
        if self.main is not None and self.main.keeper is not None:
            self.status.segments_kept += len(self.main.keeper.poll())

    def _locked_out(self) -> bool:
        """While the camera's credentials are locked out: say so, wait, and look for changed secrets."""
        if not self.auth.locked(self.url):
            return False
        try:  # the secrets file may have been corrected meanwhile (the environment cannot change under us)
            fresh = camera_url(self.camera, self.ctx.secrets())
        except KuzetError:
            fresh = self.url
        if fresh != self.url and not self.auth.locked(fresh):
            self.url = fresh
            self.backoff.reset()
            return False
        self.state(
            "failed",
            f"wrong credentials: refused {self.auth.limit} times, not tried again until the camera's username or "
            "password (or their secrets) change",
        )
        self.wait(AUTH_RECHECK_S)
        return True

    def _connection(self, actor: User) -> bool:
        """One connection: returns whether frames arrived; raises InputError when it could not open or failed."""
        from kuzet.ingest.live import LiveStream
        from kuzet.services.session import AnalysisSession

        cfg = self.run_config
        recording = self.camera.record.mode != "off" and self.main is None  # with a main stream, it is what's recorded
        keeper = self._keeper() if recording else None
        stream = LiveStream(
            self.url,
            fps=self.spec.fps,
            transport=self.camera.rtsp_transport,
            clock=self.camera.clock,
            decode=self.camera.decode or self.config.ingest.decode,
            queue_size=cfg.queue_size,
            open_timeout_s=self.config.ingest.open_timeout_s,
            read_timeout_s=2 * cfg.stall_timeout_s,
            max_pixels=self.config.ingest.max_pixels,
            make_sink=keeper.make_sink if keeper is not None else None,
        )
        self.auth.clear()  # the camera accepted the credentials
        self._analysed_up.set()  # the main stream (the same account) may try them now
        self._stream = stream
        try:
            session = AnalysisSession(self.analysis, actor, camera=self.spec.camera, source=stream.name, live=True)
            session.announce = bool(self.run_config.mqtt or self.run_config.webhooks)  # kuzet run delivers them
            if self.main is not None:
                session.main_picture = self._main_picture
        except BaseException:
            stream.close()
            self._drain_later(stream, keeper)
            raise
        got_frames = False
        last_commit = last_reload = last_poll = time.monotonic()
        last_wall = 0.0
        decoded0 = dropped0 = 0
        error: InputError | None = None
        try:
            while not self.stopping():
                try:
                    frame = stream.get(timeout=0.5)
                except InputError as exc:
                    error = exc
                    break
                st = self.status
                st.frames_decoded += stream.counters.decoded - decoded0
                st.frames_dropped += stream.counters.dropped - dropped0
                decoded0, dropped0 = stream.counters.decoded, stream.counters.dropped
                st.queue_depth = stream.queue_depth
                st.decoder = stream.decoder
                if frame is None:
                    silent = time.monotonic() - stream.last_frame_at
                    if silent > (cfg.stall_timeout_s if got_frames else cfg.first_frame_timeout_s):
                        self.state("stalled", f"no frame for {silent:.0f} s; reopening the stream")
                        break
                    self.send()
                    continue
                if not got_frames:
                    got_frames = True
                    self.backoff.reset()
                self.state("up", self._up_reason(stream))  # the main stream's state may change under it
                before = _detector_counts(session.stats)
                t0 = time.perf_counter()
                session.process(frame)
                st.observe_latency(time.perf_counter() - t0)
                st.frames_analysed += 1
                _add_detector_counts(st, session.stats, before)
                st.last_frame_at, st.stream_time = time.time(), frame.pts
                now = time.monotonic()
                if cfg.wall_snapshot_s and now - last_wall >= cfg.wall_snapshot_s:
                    last_wall = now
                    if self._wall_due(now):
                        self._wall_picture(frame.image, session.traffic)
                if now - last_poll >= cfg.gallery_poll_s:
                    last_poll = now
                    full = now - last_reload >= cfg.gallery_refresh_s
                    try:  # approvals, expiries and erasures reach a camera that never stops
                        if full:
                            session.reload_gallery()
                            last_reload = now
                        else:
                            session.refresh_gallery()  # only what changed
                    except KuzetError as exc:
                        log.warning("camera %s: gallery not updated (%s); next try later", self.spec.camera, exc)
                if session.pending or now - last_commit >= cfg.stats_interval_s:
                    self._commit(session, keeper)
                    last_commit = now
                else:
                    if keeper is not None:
                        self.status.segments_kept += len(keeper.poll())
                    self._poll_main()
                self._drain()
                self.send()
        finally:
            stream.close()
            if session.frames:
                session.finish()
                self._final_commit(session, keeper)
            self._drain_later(stream, keeper)
        if error is not None and not got_frames:
            raise error
        if error is not None:
            self._ended = error.message
        return got_frames

    def _wall_due(self, now: float) -> bool:
        """A wall picture now? Every `wall_snapshot_s` while someone watches, else every `wall_idle_s`."""
        from kuzet.store.status import wall_watched

        idle = self.run_config.wall_idle_s
        try:
            watched = wall_watched(self.ctx.data_dir, self.spec.camera, now=time.time())
        except OSError:
            watched = True  # cannot tell: keep the picture live
        if watched or (idle and now - self._wall_written >= idle):
            self._wall_written = now
            return True
        return False

    def _wall_picture(self, image: Image, traffic: TrafficAnalyzer | None) -> None:
        """Leave the camera's latest picture for the wall, redacted like every picture shown, at most 640 px wide.

        A traffic camera's picture carries its lines, zones, tracked objects and their speeds. A failure is logged;
        it never stops the camera.
        """
        import cv2
        import numpy as np

        from kuzet.services.cameras import traffic_picture
        from kuzet.store.media import encode_jpeg
        from kuzet.store.status import write_wall_frame

        try:
            shown = self.ctx.models.video_redactor.redact_image(image).image
            if traffic is not None:
                traffic_picture(shown, traffic)
            h, w = shown.shape[:2]
            if w > 640:
                shown = np.asarray(cv2.resize(shown, (640, round(h * 640 / w)), interpolation=cv2.INTER_AREA), np.uint8)
            write_wall_frame(self.ctx.data_dir, self.spec.camera, encode_jpeg(shown, quality=75))
        except Exception as exc:  # OpenCV and drawing errors too: the picture never stops the camera
            log.warning("camera %s: wall picture not written (%s)", self.spec.camera, exc, exc_info=True)

    def _drain_later(self, stream: LiveStream, keeper: RecordingKeeper | None) -> None:
        """Decide a closed connection's last segments once its decoding thread has let go of them."""
        if keeper is not None:
            self._draining.append((stream, keeper))
        self._drain()

    def _drain(self, *, wait_s: float = 0.0) -> None:
        deadline = time.monotonic() + wait_s
        for stream, keeper in list(self._draining):
            while stream.alive and time.monotonic() < deadline:
                time.sleep(0.1)
            if not stream.alive:  # a read blocked on a dead camera ends at its read timeout
                self.status.segments_kept += len(keeper.poll(final=True))
                self._draining.remove((stream, keeper))

    def _final_commit(self, session: AnalysisSession, keeper: RecordingKeeper | None) -> None:
        """The connection's last decisions: retried a few times; if the database stays unusable, their files go."""
        for attempt in range(4):
            if self._commit(session, keeper):
                return
            time.sleep(0.5 * 2**attempt)
        log.error("camera %s: could not store its last decisions; discarding them", self.spec.camera)
        session.discard()

    def _commit(self, session: AnalysisSession, keeper: RecordingKeeper | None) -> bool:
        try:
            stored = session.commit()
        except KuzetError as exc:
            # The database is busy or full: keep the decisions pending and try again with the next frame.
            self.status.reason = f"could not store: {exc.message}"
            return False
        st = self.status
        st.run_id = stored.run_id
        st.events += len(stored.events)
        st.alerts += len(stored.alerts)
        st.passages += len(stored.passages)
        st.violations += len(stored.violations)
        if keeper is not None:
            keeper.keep(stored.spans)
            st.segments_kept += len(keeper.poll())
        stream = self._stream
        if self.main is not None and stream is not None and stream.offset is not None and stored.spans:
            off = stream.offset  # the analysed stream's times onto the monotonic clock the main stream records on
            self.main.keep([(a + off, b + off) for a, b in stored.spans])
            self._poll_main()
        return True
