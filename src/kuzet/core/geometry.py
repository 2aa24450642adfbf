"""Box geometry shared by detectors and trackers (vectorised numpy)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def iou_matrix(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """Intersection over union of every box in `a` with every box in `b`.

    Args:
        a: Boxes (x1, y1, x2, y2), shape (N, 4).
        b: Boxes (x1, y1, x2, y2), shape (M, 4).

    Returns:
        IoU values in [0, 1], shape (N, M), float32.

    """
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float32)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], iou_threshold: float) -> NDArray[np.intp]:
    """Greedy non-maximum suppression.

    Args:
        boxes: Boxes (x1, y1, x2, y2), shape (N, 4).
        scores: Scores, shape (N,).
        iou_threshold: A box overlapping a better one by at least this IoU is dropped.

    Returns:
        Indices of the kept boxes, best score first, shape (K,).

    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    ious = iou_matrix(boxes, boxes)
    suppressed = np.zeros(boxes.shape[0], dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= ious[i] >= iou_threshold
    return np.asarray(keep, dtype=np.intp)
