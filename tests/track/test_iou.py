from __future__ import annotations

import numpy as np

from kuzet.config import TrackerConfig
from kuzet.core.types import Detections
from kuzet.track.iou import IoUTracker


def _dets(boxes: list[list[float]], scores: list[float] | None = None) -> Detections:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    s = np.array(scores if scores is not None else [0.9] * len(b), np.float32)
    return Detections(boxes=b, scores=s)


def test_two_moving_faces_keep_their_ids() -> None:
    tracker = IoUTracker(TrackerConfig())
    ids = []
    for t in range(20):
        a = [10 + 6 * t, 50, 60 + 6 * t, 100]  # moving right, 6 px per frame
        b = [300 - 6 * t, 200, 350 - 6 * t, 250]  # moving left
        ids.append(tracker.update(_dets([a, b]), t / 10).track_ids.tolist())
    assert all(row == ids[0] for row in ids)
    assert ids[0][0] != ids[0][1]


def test_fast_motion_is_followed_by_prediction() -> None:
    tracker = IoUTracker(TrackerConfig(iou_threshold=0.3))
    seen = set()
    for t in range(10):
        box = [20 * t, 0, 20 * t + 40, 40]  # 50% of its width per frame
        seen.update(tracker.update(_dets([box]), float(t)).track_ids.tolist())
    assert len(seen) == 1


def test_gap_longer_than_max_gap_ends_track() -> None:
    tracker = IoUTracker(TrackerConfig(max_gap_s=0.5))
    first = tracker.update(_dets([[0, 0, 50, 50]]), 0.0).track_ids[0]
    update = tracker.update(_dets([]), 0.3)
    assert update.finished == []
    update = tracker.update(_dets([[0, 0, 50, 50]]), 1.0)
    assert update.finished == [first]
    assert update.track_ids[0] != first


def test_low_score_continues_but_never_starts_a_track() -> None:
    tracker = IoUTracker(TrackerConfig(high_score=0.6))
    assert tracker.update(_dets([[0, 0, 50, 50]], [0.3]), 0.0).track_ids.tolist() == [-1]
    tid = tracker.update(_dets([[0, 0, 50, 50]], [0.9]), 0.1).track_ids[0]
    assert tracker.update(_dets([[2, 0, 52, 50]], [0.3]), 0.2).track_ids.tolist() == [tid]


def test_flush_returns_open_tracks() -> None:
    tracker = IoUTracker()
    tracker.update(_dets([[0, 0, 10, 10], [50, 50, 60, 60]]), 0.0)
    assert sorted(tracker.flush()) == [1, 2]
    assert tracker.flush() == []
