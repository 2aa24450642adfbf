"""Recording live cameras: which segments are kept (all, or those around stored decisions), encrypted at rest.

Segments are the camera's own compressed video (copied, not re-encoded, by `ingest.live.SegmentRecorder`). Kept
segments are encrypted like every other original (AES-GCM, `DataCipher`) under `media/recordings/CAMERA/`, where
retention deletes them after `recordings_days`. Playing one back is an audited export.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kuzet.config.models import RecordConfig
from kuzet.ingest.live import PacketSink, Segment, SegmentRecorder
from kuzet.store.crypto import DataCipher
from kuzet.store.media import MediaStore


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
