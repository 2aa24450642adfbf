from __future__ import annotations

import numpy as np

from kuzet.config.models import MotionGateConfig
from kuzet.core.types import Frame
from kuzet.ingest.motion import MotionGate

FPS = 10


def _scene(i: int, *, moving: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(90, 110, (240, 320, 3), dtype=np.uint8)
    if moving:
        x = 10 + 8 * i
        img[80:160, x : x + 40] = 230  # a bright block walking right
    return img


def _run(gate: MotionGate, frames: list[np.ndarray], busy: bool = False, still: bool = False) -> list[bool]:
    return [gate.needed(Frame(image=f, pts=i / FPS, index=i, still=still), busy=busy) for i, f in enumerate(frames)]


def test_still_scene_is_checked_only_on_the_refresh() -> None:
    gate = MotionGate(MotionGateConfig(refresh_s=1.0))
    runs = _run(gate, [_scene(i, moving=False) for i in range(30)])
    assert sum(runs) == 3  # t = 0, 1.0, 2.0
    assert gate.skipped == 27


def test_motion_and_open_tracks_always_run() -> None:
    moving = _run(MotionGate(), [_scene(i, moving=True) for i in range(30)])
    assert all(moving)
    busy = _run(MotionGate(), [_scene(i, moving=False) for i in range(30)], busy=True)
    assert all(busy)


def test_stills_and_a_disabled_gate_always_run() -> None:
    still = _run(MotionGate(), [_scene(0, moving=False)] * 5, still=True)
    off = _run(MotionGate(MotionGateConfig(enabled=False)), [_scene(0, moving=False)] * 5)
    assert all(still)
    assert all(off)


def test_regions_box_what_moves_padded_and_merged() -> None:
    from kuzet.ingest.motion import merge_boxes

    gate = MotionGate()
    _run(gate, [_scene(i, moving=True) for i in range(5)])
    (box,) = gate.regions()
    x = 10 + 8 * 4  # the block's last position: 80x40 px at (x, 80)
    assert box[0] <= x and box[2] >= x + 40 and box[1] <= 80 and box[3] >= 160  # the block, whole
    assert box[1] < 80 - 20 and (box[2] - box[0]) * (box[3] - box[1]) < 0.5 * 320 * 240  # padded, not the frame
    gate = MotionGate()
    _run(gate, [_scene(0, moving=False)] * 3)
    assert len(gate.regions()) == 0  # nothing moves
    merged = merge_boxes(np.array([[0, 0, 10, 10], [5, 5, 20, 20], [30, 30, 40, 40]], np.float32))
    assert merged.tolist() == [[0, 0, 20, 20], [30, 30, 40, 40]]
