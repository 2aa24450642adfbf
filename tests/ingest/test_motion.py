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
