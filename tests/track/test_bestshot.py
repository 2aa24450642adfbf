from __future__ import annotations

import cv2
import numpy as np
import pytest

from kuzet.core.types import FaceSample
from kuzet.recognize.align import DLIB_CHIP_TEMPLATE
from kuzet.track.bestshot import face_quality, keep_best, sharpness


def _sample(q: float) -> FaceSample:
    z = np.zeros((1, 1, 3), np.uint8)
    return FaceSample(chip=z, crop=z, box=np.zeros(4, np.float32), quality=q, pts=0.0)


def test_sharp_large_frontal_beats_blurred_small_and_turned() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    chips = np.stack([sharp, blurred, sharp, sharp])
    big = [0, 0, 120, 120]
    boxes = np.array([big, big, [0, 0, 30, 30], big], np.float32)
    frontal = DLIB_CHIP_TEMPLATE
    turned = frontal.copy()
    turned[2, 0] += 35  # nose far to one side: a turned head
    lms = np.stack([frontal, frontal, frontal, turned]).astype(np.float32)
    q = face_quality(chips, boxes, lms)
    assert q[0] == q.max()
    assert q[1] < q[0] / 3 and q[2] < q[0] / 3 and q[3] < q[0] / 3


def test_keep_best_holds_the_top_k_in_order() -> None:
    shots: list[FaceSample] = []
    for q in [0.2, 0.9, 0.1, 0.5, 0.7]:
        keep_best(shots, _sample(q), limit=3)
    assert [s.quality for s in shots] == [0.9, 0.7, 0.5]


def test_geometric_quality_bounds_full_quality() -> None:
    from kuzet.track.bestshot import face_quality, geometric_quality

    rng = np.random.default_rng(4)
    chips = rng.integers(0, 255, (6, 150, 150, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, s, s] for s in (10, 30, 60, 100, 150, 200)], np.float32)
    lms = np.tile(np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float32), (6, 1, 1))
    lms[:, 2, 0] += np.arange(6) * 4  # more and more turned
    full = face_quality(chips, boxes, lms)
    bound = geometric_quality(boxes, lms)
    assert np.all(bound >= full - 1e-6)
    assert np.all(full > 0)


def test_sharpness_reads_the_middle_of_any_chip_size() -> None:
    """dlib's chip: 30:120 as measured; SFace's 112x112 crop: the same middle 60% (22:90), not an off-centre part."""
    rng = np.random.default_rng(0)
    for side, (a, b) in ((150, (30, 120)), (112, (22, 90))):
        textured = np.zeros((1, side, side, 3), np.uint8)
        textured[0, a:b, a:b] = rng.integers(0, 255, (b - a, b - a, 3), dtype=np.uint8)
        assert sharpness(textured)[0] == 1.0
        outside = rng.integers(0, 255, (1, side, side, 3), dtype=np.uint8)
        outside[0, a:b, a:b] = 128
        assert sharpness(outside)[0] == pytest.approx(0.05)
