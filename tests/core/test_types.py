from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuzet.core.errors import InputError
from kuzet.core.geometry import iou_matrix, nms
from kuzet.core.types import Detections, Frame


def _dets(n: int) -> Detections:
    boxes = np.array([[i, i, i + 10, i + 10] for i in range(n)], np.float32)
    return Detections(
        boxes=boxes, scores=np.linspace(0.9, 0.5, n).astype(np.float32), landmarks=np.zeros((n, 5, 2), np.float32)
    )


def test_detections_validate_shapes() -> None:
    with pytest.raises(ValueError, match="scores"):
        Detections(boxes=np.zeros((2, 4), np.float32), scores=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="landmarks"):
        Detections(
            boxes=np.zeros((2, 4), np.float32),
            scores=np.zeros(2, np.float32),
            landmarks=np.zeros((2, 4, 2), np.float32),
        )
    with pytest.raises(ValueError, match="x2 >= x1"):
        Detections(boxes=np.array([[10, 0, 0, 5]], np.float32), scores=np.zeros(1, np.float32))


def test_detections_mask_and_index_filtering() -> None:
    d = _dets(5)
    kept = d[d.scores > 0.65]
    assert len(kept) == 3
    assert kept.landmarks is not None and kept.landmarks.shape == (3, 5, 2)
    assert np.array_equal(d[np.array([4, 0])].boxes[:, 0], [4, 0])
    assert len(Detections.empty()) == 0


def test_frame_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Frame(image=np.zeros((4, 4), np.uint8), pts=0.0, index=0)


def test_error_str_includes_hint() -> None:
    assert str(InputError("bad", hint="fix it")) == "bad (fix it)"


boxes = st.lists(
    st.tuples(st.integers(0, 100), st.integers(0, 100), st.integers(1, 50), st.integers(1, 50)), min_size=1, max_size=12
)


@given(boxes)
def test_iou_matrix_matches_pairwise_definition(raw: list[tuple[int, int, int, int]]) -> None:
    b = np.array([[x, y, x + w, y + h] for x, y, w, h in raw], np.float32)
    m = iou_matrix(b, b)
    assert np.allclose(np.diag(m), 1.0)
    assert np.allclose(m, m.T)
    for i in range(len(b)):
        for j in range(len(b)):
            ix = max(0.0, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
            iy = max(0.0, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
            inter = ix * iy
            union = (b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
            assert m[i, j] == pytest.approx(inter / union, abs=1e-5)


@given(boxes, st.floats(0.1, 0.9))
def test_nms_keeps_no_overlapping_pair(raw: list[tuple[int, int, int, int]], thr: float) -> None:
    b = np.array([[x, y, x + w, y + h] for x, y, w, h in raw], np.float32)
    scores = np.arange(len(b), dtype=np.float32)
    keep = nms(b, scores, thr)
    assert keep[0] == len(b) - 1  # the best box always survives
    m = iou_matrix(b[keep], b[keep])
    np.fill_diagonal(m, 0)
    assert (m < thr).all()
