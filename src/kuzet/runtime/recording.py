"""Recording live cameras: which segments are kept (all, or those around stored decisions), encrypted at rest.

Segments are the camera's own compressed video (copied, not re-encoded, by `ingest.live.SegmentRecorder`). Kept
segments are encrypted like every other original (AES-GCM, `DataCipher`) under `media/recordings/CAMERA/`, where
retention deletes them after `recordings_days`. Playing one back is an audited export.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kuzet.config.models import CameraConfig, IngestConfig, RecordConfig, RunConfig
from kuzet.config.vision import DecodeConfig
from kuzet.core.errors import KuzetError, StreamAuthError
from kuzet.core.types import Image
from kuzet.ingest.live import PacketSink, Segment, SegmentRecorder
from kuzet.ingest.sources import redact_url
from kuzet.store.crypto import DataCipher
from kuzet.store.media import MediaStore

log = logging.getLogger("kuzet.run")

if TYPE_CHECKING:
    from collections.abc import Callable

    from kuzet.ingest.live import LiveStream
    from kuzet.runtime.worker import AuthLock


class RecordingKeeper:
    """One connection's recording: collects closed segments and keeps or deletes each one.

    Spans are in the stream's own time (seconds), like the segments, so one keeper serves one connection.
    """

    def __init__(
        self, camera: str, config: RecordConfig, *, media: MediaStore, cipher: DataCipher, cache_dir: Path
    ) -> None:
        self.camera = camera
        self.config = config
        self.media = media
        self.cipher = cipher
        self.cache_dir = cache_dir
        self.kept: list[str] = []
        self.deleted = 0
        self._lock = threading.Lock()
        self._closed: list[Segment] = []
        self._spans: list[tuple[float, float]] = []
        self._newest = 0.0

    def make_sink(self, stream: Any) -> PacketSink:
        """The packet sink for a freshly opened stream."""
        return SegmentRecorder(stream, self.cache_dir, segment_s=self.config.segment_s, on_segment=self._on_segment)

    def _on_segment(self, segment: Segment) -> None:
        with self._lock:  # called from the decoding thread
            self._closed.append(segment)
            self._newest = max(self._newest, segment.end_pts)

    def keep(self, spans: list[tuple[float, float]]) -> None:
        """Stored decisions covering these stream-time spans: keep their segments, with pre- and post-roll."""
        cfg = self.config
        with self._lock:
            self._spans.extend((a - cfg.pre_roll_s, b + cfg.post_roll_s) for a, b in spans)

    def poll(self, *, final: bool = False) -> list[str]:
        """Keep or delete every closed segment that can be decided now; returns the stored paths (media-relative).

        `final` (the connection ended and its last decisions were passed to `keep`) decides everything left.
        """
        with self._lock:
            closed, spans, newest = list(self._closed), list(self._spans), self._newest
        decided: list[Segment] = []
        stored: list[str] = []
        for seg in closed:
            covered = self.config.mode == "continuous" or any(a <= seg.end_pts and b >= seg.start_pts for a, b in spans)
            if covered:
                stored.append(self._store(seg))
                decided.append(seg)
            elif final or seg.end_pts < newest - self.config.cache_s:
                seg.path.unlink(missing_ok=True)
                self.deleted += 1
                decided.append(seg)
        with self._lock:
            self._closed = [s for s in self._closed if s not in decided]
            horizon = newest - self.config.cache_s - self.config.post_roll_s
            self._spans = [(a, b) for a, b in self._spans if b >= horizon]
        self.kept.extend(stored)
        return stored

    def _store(self, seg: Segment) -> str:
        rel = self.media.save_encrypted(
            seg.path.read_bytes(),
            cipher=self.cipher,
            kind=f"recordings/{self.camera}",
            suffix=".mp4",
            at=datetime.fromtimestamp(seg.started_at, UTC),
        )
        seg.path.unlink(missing_ok=True)
        return rel


class MainStream:
    """A camera's main stream beside its analysed sub-stream: recorded and held for evidence, never analysed.

    Its own thread connects, copies every packet into the recording (when the camera records) and into a short ring
    of packets for snapshots, and reconnects with its own backoff. Its failures never stop the analysis: they show
    in `reason`, which the worker adds to the camera's status. Recording times are this machine's monotonic clock
    (the two streams are separate connections with clocks of their own), so one keeper serves every connection.

    Args:
        url: The main stream's URL, credentials included (never logged).
        camera: The camera's settings (transport, decoding, recording).
        ingest: `ingest` settings (open timeout, pixel cap).
        run: `run` settings (stall timeout, backoff, how many refused credentials stop the tries).
        keeper: Decides the recorded segments (None: the camera does not record; the stream serves snapshots).
        auth: Counts refusals of the main stream's credentials across restarts (None: only within this object).
        fresh_url: The URL with the credentials as they are now (the secrets file re-read), asked while locked out.
        after: Set once the camera's analysed stream has connected: the main stream, which uses the same account,
            waits for it, so that wrong credentials are refused `auth_attempts` times in all, not twice that.

    """

    def __init__(
        self,
        url: str,
        *,
        camera: CameraConfig,
        ingest: IngestConfig,
        run: RunConfig,
        keeper: RecordingKeeper | None,
        auth: AuthLock | None = None,
        fresh_url: Callable[[], str] | None = None,
        after: threading.Event | None = None,
    ) -> None:
        from kuzet.runtime.worker import Backoff

        self.name = redact_url(url)
        self._url = url
        self._camera = camera
        self._ingest = ingest
        self._run = run
        self.keeper = keeper
        self._auth = auth
        self._fresh_url = fresh_url
        self._after = after
        self._backoff = Backoff(run)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: LiveStream | None = None
        self._held: LiveStream | None = None
        """The newest connection, open or ended: its packets serve snapshots until the next one connects (a track
        that ends with the stream is decided after it)."""
        self.reason = "connecting"
        """Why the main stream is not being recorded now ("" while it is)."""
        self.connections = 0
        self._thread = threading.Thread(target=self._loop, name=f"main:{camera.name}", daemon=True)
        self._thread.start()

    @property
    def size(self) -> tuple[int, int] | None:
        """Width and height of the main stream's frames while connected."""
        stream = self._stream
        return stream.size if stream is not None else None

    def _loop(self) -> None:
        from kuzet.ingest.live import LiveStream

        refused = 0
        while not self._stop.is_set():
            if self._after is not None and not self._after.is_set():
                self.reason = "main stream waits for the analysed stream to connect (the same account)"
                self._stop.wait(0.5)
                continue
            if self._locked_out():
                continue
            try:
                stream = LiveStream(
                    self._url,
                    fps=None,
                    analyse=False,
                    keep_s=self._camera.record.evidence_s,
                    transport=self._camera.rtsp_transport,
                    clock="stream",
                    decode=DecodeConfig(hwaccel="none"),  # nothing is decoded as it arrives
                    queue_size=1,
                    open_timeout_s=self._ingest.open_timeout_s,
                    read_timeout_s=2 * self._run.stall_timeout_s,
                    max_pixels=self._ingest.max_pixels,
                    make_sink=self.keeper.make_sink if self.keeper is not None else None,
                )
            except StreamAuthError as exc:
                refused = self._auth.refused(self._url) if self._auth is not None else refused + 1
                if refused >= self._run.auth_attempts:
                    if self._auth is None:  # nothing to look for: the worker restarts with changed credentials
                        self.reason = f"main stream {self.name}: {self._locked_reason()}"
                        return
                    continue  # locked out: cameras lock accounts after a few wrong passwords
                self._retry(f"main stream: {exc.message}")
                continue
            except KuzetError as exc:
                self._retry(f"main stream: {exc.message}")
                continue
            except Exception as exc:  # never let an unexpected error end the thread silently: say it, retry
                log.warning("camera %s: main stream failed to open (%s)", self._camera.name, type(exc).__name__)
                self._retry(f"main stream: {type(exc).__name__}")
                continue
            refused = 0
            if self._auth is not None:
                self._auth.clear()  # the camera accepted the credentials
            self.connections += 1
            with self._lock:
                self._stream = self._held = stream
            ended = self._watch(stream)
            with self._lock:
                self._stream = None
            stream.close()
            if ended:
                self._retry(f"main stream: {ended}")

    def _locked_reason(self) -> str:
        return (
            f"wrong credentials: refused {self._run.auth_attempts} times, not tried again until the camera's "
            "username or password (or their secrets) change"
        )

    def _locked_out(self) -> bool:
        """While the main stream's credentials are locked out: say so, wait, and look for changed secrets."""
        from kuzet.runtime.worker import AUTH_RECHECK_S

        if self._auth is None or not self._auth.locked(self._url):
            return False
        try:
            fresh = self._fresh_url() if self._fresh_url is not None else self._url
        except KuzetError:
            fresh = self._url
        if fresh != self._url and not self._auth.locked(fresh):
            self._url, self.name = fresh, redact_url(fresh)
            self._backoff.reset()
            return False
        self.reason = f"main stream {self.name}: {self._locked_reason()}"
        self._stop.wait(AUTH_RECHECK_S)
        return True

    def _watch(self, stream: LiveStream) -> str:
        """Until the stream fails or stalls (returns why) or we are stopped (returns "")."""
        got = False
        while not self._stop.is_set():
            try:
                stream.get(timeout=0.5)  # nothing is queued: it waits, and raises when the stream failed
            except KuzetError as exc:
                return exc.message
            silent = time.monotonic() - stream.last_frame_at
            if stream.counters.packets and not got:
                got = True
                self._backoff.reset()
                self.reason = ""
            limit = self._run.stall_timeout_s if got else self._run.first_frame_timeout_s
            if silent > limit:
                return f"no packet for {silent:.0f} s; reopening"
        return ""

    def _retry(self, reason: str) -> None:
        delay = self._backoff.next()
        self.reason = f"{reason}; retrying in {delay:.0f} s"
        self._stop.wait(delay)

    def keep(self, spans: list[tuple[float, float]]) -> None:
        """Stored decisions covering these spans of this machine's monotonic clock (seconds)."""
        if self.keeper is not None:
            self.keeper.keep(spans)

    def picture_at(self, at: float) -> Image | None:
        """The main stream's frame nearest monotonic time `at` (RGB uint8, (H, W, 3)), or None when not held."""
        with self._lock:
            stream = self._held
        if stream is None or stream.ring is None or stream.offset is None:
            return None
        got = stream.ring.picture_at(at - stream.offset)
        return None if got is None else got[0]

    def close(self) -> list[str]:
        """Stop, close the open segment and decide every segment left; returns the stored paths."""
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout=2 * self._run.stall_timeout_s + 5)
        return self.keeper.poll(final=True) if self.keeper is not None else []
