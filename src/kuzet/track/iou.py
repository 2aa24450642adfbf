"""IoU tracker with ByteTrack-style two-pass association and constant-velocity prediction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import TrackerConfig
from kuzet.core.geometry import iou_matrix
from kuzet.core.types import Detections
from kuzet.track.base import TrackerUpdate


@dataclass(slots=True)
class _State:
    box: NDArray[np.float32]
    velocity: NDArray[np.float32]
    last_pts: float


class IoUTracker:
    """Tracks boxes of one camera by overlap with each track's predicted position.

    High-score detections are matched first; low-score ones may then continue tracks that are left over
    (ByteTrack's idea: a blurred or half-hidden face keeps its track but never starts one).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: dict[int, _State] = {}
        self._next_id = 1

    def _predicted(self, ids: list[int], pts: float) -> NDArray[np.float32]:
        if not ids:
            return np.zeros((0, 4), np.float32)
        return np.stack(
            [self._tracks[i].box + self._tracks[i].velocity * (pts - self._tracks[i].last_pts) for i in ids]
        ).astype(np.float32)

    def predicted(self, pts: float, *, seen_since: float = -np.inf) -> NDArray[np.float32]:
        """Where the open tracks are expected at `pts` (N, 4): what a detector must look at to continue them.

        With `seen_since`, only the tracks last seen at that time or later (the others may be gone).
        """
        return self._predicted([i for i, s in self._tracks.items() if s.last_pts >= seen_since], pts)

    def _match(
        self, track_ids: list[int], boxes: NDArray[np.float32], pts: float
    ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Hungarian matching on IoU; returns (track, detection) pairs, unmatched tracks, unmatched dets."""
        if not track_ids or boxes.shape[0] == 0:
            return [], list(range(len(track_ids))), list(range(boxes.shape[0]))
        from scipy.optimize import linear_sum_assignment  # imported here: scipy.optimize costs 0.5 s to import

        ious = iou_matrix(self._predicted(track_ids, pts), boxes)
        rows, cols = linear_sum_assignment(-ious)
        ok = ious[rows, cols] >= self.config.iou_threshold
        pairs = [(int(r), int(c)) for r, c in zip(rows[ok], cols[ok], strict=True)]
        used_t = {r for r, _ in pairs}
        used_d = {c for _, c in pairs}
        return (
            pairs,
            [i for i in range(len(track_ids)) if i not in used_t],
            [j for j in range(boxes.shape[0]) if j not in used_d],
        )

    def _advance(self, tid: int, box: NDArray[np.float32], pts: float) -> None:
        state = self._tracks[tid]
        dt = pts - state.last_pts
        if dt > 1e-6:
            # Smoothed velocity, so one jittery box does not throw the prediction off.
            state.velocity = (0.5 * state.velocity + 0.5 * (box - state.box) / dt).astype(np.float32)
        state.box = box.astype(np.float32)
        state.last_pts = pts

    def update(self, detections: Detections, pts: float) -> TrackerUpdate:
        """Assign detections to tracks and end tracks unseen for more than `max_gap_s`."""
        finished = [
            tid for tid, s in self._tracks.items() if pts - s.last_pts > self.config.max_gap_s or pts < s.last_pts
        ]
        for tid in finished:
            del self._tracks[tid]
        n = len(detections)
        assigned = np.full(n, -1, np.intp)
        high = np.flatnonzero(detections.scores >= self.config.high_score)
        low = np.flatnonzero(detections.scores < self.config.high_score)
        open_ids = list(self._tracks)
        pairs, left_tracks, left_high = self._match(open_ids, detections.boxes[high], pts)
        for t, d in pairs:
            assigned[high[d]] = open_ids[t]
        remaining = [open_ids[t] for t in left_tracks]
        pairs_low, _, _ = self._match(remaining, detections.boxes[low], pts)
        for t, d in pairs_low:
            assigned[low[d]] = remaining[t]
        for d in left_high:
            tid = self._next_id
            self._next_id += 1
            self._tracks[tid] = _State(box=detections.boxes[high[d]], velocity=np.zeros(4, np.float32), last_pts=pts)
            assigned[high[d]] = tid
        # Each track gets at most one detection per frame (both passes are one-to-one).
        for i in np.flatnonzero(assigned >= 0):
            self._advance(int(assigned[i]), detections.boxes[i], pts)
        return TrackerUpdate(track_ids=assigned, finished=finished)

    def flush(self) -> list[int]:
        """End every open track."""
        ids = list(self._tracks)
        self._tracks.clear()
        return ids
