"""Alignment of faces to a model's face chip from five landmarks: dlib's 150x150 chip, or ArcFace's 112x112 crop.

`DLIB_CHIP_TEMPLATE` gives where the five points (eye centres, nose tip, mouth corners) fall in the chip that dlib's
`get_face_chip(img, shape5, 150, 0.25)` makes, the chip dlib's ResNet descriptor was trained on. It was measured on
157 faces of the LFW and deepface sample sets (dlib HOG boxes, 68-point landmarks mapped through dlib's own chip
transform; see `bench/calibrate_alignment.py`); the spread per point is 1-6 px. `ARCFACE_TEMPLATE` is the
standard five-point template of the 112x112 crops that ArcFace-family models (SFace among them) were trained on.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.core.types import CHIP_SIZE, Image

DLIB_CHIP_TEMPLATE = np.array(
    [[47.18, 46.08], [99.95, 45.97], [73.11, 76.32], [49.72, 103.85], [98.40, 103.73]], np.float32
)
"""Five points (x, y) in a 150x150 dlib face chip, shape (5, 2)."""

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)
"""Five points (x, y) in the standard 112x112 ArcFace crop (insightface, OpenCV's FaceRecognizerSF), shape (5, 2)."""

ARCFACE_SIZE = 112
"""Side of the ArcFace crop in pixels."""


def similarity_transforms(landmarks: NDArray[np.float32], template: NDArray[np.float32]) -> NDArray[np.float64]:
    """Least-squares similarity transforms (Umeyama, no reflection) from each landmark set to the template.

    Args:
        landmarks: Points in image pixels, shape (N, K, 2).
        template: Target points, shape (K, 2).

    Returns:
        Affine matrices mapping image to template coordinates, shape (N, 2, 3), float64.

    """
    src = landmarks.astype(np.float64)
    dst = template.astype(np.float64)
    src_mean = src.mean(axis=1, keepdims=True)
    dst_mean = dst.mean(axis=0)
    sc = src - src_mean
    dc = dst - dst_mean
    # With complex numbers a 2-D similarity is one multiplication: dst = a * src + b.
    zs = sc[..., 0] + 1j * sc[..., 1]
    zd = dc[:, 0] + 1j * dc[:, 1]
    denom = np.maximum((np.abs(zs) ** 2).sum(axis=1), 1e-12)
    a = (np.conj(zs) * zd[None, :]).sum(axis=1) / denom
    out = np.empty((src.shape[0], 2, 3), np.float64)
    out[:, 0, 0] = a.real
    out[:, 0, 1] = -a.imag
    out[:, 1, 0] = a.imag
    out[:, 1, 1] = a.real
    centre = src_mean[:, 0, :]
    out[:, 0, 2] = dst_mean[0] - (a.real * centre[:, 0] - a.imag * centre[:, 1])
    out[:, 1, 2] = dst_mean[1] - (a.imag * centre[:, 0] + a.real * centre[:, 1])
    return out


def align_faces(
    image: Image,
    landmarks: NDArray[np.float32],
    *,
    size: int = CHIP_SIZE,
    template: NDArray[np.float32] | None = None,
) -> NDArray[np.uint8]:
    """Cut aligned face chips out of an image.

    Faces much larger than the chip are first shrunk with area averaging, as dlib does, so that the chip is
    not aliased.

    Args:
        image: RGB image, shape (H, W, 3), uint8.
        landmarks: Five points per face in image pixels, shape (N, 5, 2).
        size: Chip side in pixels.
        template: Where the five points go, in pixels of the `size` chip, shape (5, 2); None: dlib's chip
            (`DLIB_CHIP_TEMPLATE` scaled to `size`).

    Returns:
        Chips, shape (N, size, size, 3), RGB uint8.

    """
    n = landmarks.shape[0]
    chips = np.empty((n, size, size, 3), np.uint8)
    if n == 0:
        return chips
    if template is None:
        template = DLIB_CHIP_TEMPLATE * (size / CHIP_SIZE)
    mats = similarity_transforms(landmarks, template)
    for i in range(n):
        m = mats[i]
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        src = image
        if scale < 0.5:
            # Shrink just the region the chip covers, by an integer-ish factor, then warp the rest of the way.
            inv = cv2.invertAffineTransform(m)
            corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
            x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2
            x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
            x0, y0 = max(x0, 0), max(y0, 0)
            x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
            if x1 - x0 < 2 or y1 - y0 < 2:
                chips[i] = 0
                continue
            shrink = scale * 1.5
            region = image[y0:y1, x0:x1]
            rw = max(1, round(region.shape[1] * shrink))
            rh = max(1, round(region.shape[0] * shrink))
            src = np.asarray(cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA), dtype=np.uint8)
            sx, sy = rw / region.shape[1], rh / region.shape[0]
            # Map shrunk-region pixels back to image pixels, then apply m.
            back = np.array([[1 / sx, 0, x0], [0, 1 / sy, y0], [0, 0, 1]], np.float64)
            m = m @ back
        chips[i] = cv2.warpAffine(
            src,
            m,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
    return chips


class LandmarkAligner:
    """The detector's own five landmarks (CenterFace, YuNet) mapped onto a template: no extra model.

    By default the template is `DLIB_CHIP_TEMPLATE` (150x150 chips for dlib's descriptor); SFace gets
    `LandmarkAligner(template=ARCFACE_TEMPLATE, size=ARCFACE_SIZE)`.
    """

    name = "landmarks"

    def __init__(self, *, template: NDArray[np.float32] | None = None, size: int = CHIP_SIZE) -> None:
        if template is not None and template.shape != (5, 2):
            raise ValueError(f"template must be (5, 2), got {template.shape}")
        self.template = template
        self.size = size

    def align(self, image: Image, boxes: NDArray[np.float32], landmarks: NDArray[np.float32]) -> NDArray[np.uint8]:
        """Chips (N, size, size, 3) RGB uint8 from landmarks (N, 5, 2) in image pixels; boxes are not used."""
        return align_faces(image, landmarks, size=self.size, template=self.template)


def crop_region(image: Image, box: NDArray[np.float32], *, margin: float = 0.4) -> tuple[Image, int, int]:
    """The box enlarged by `margin` of its size on each side, clipped to the image.

    Returns:
        An RGB uint8 copy of the region, and the region's top-left corner (x, y) in the image.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    xa = max(0, int(x1 - margin * w))
    ya = max(0, int(y1 - margin * h))
    xb = min(image.shape[1], int(np.ceil(x2 + margin * w)))
    yb = min(image.shape[0], int(np.ceil(y2 + margin * h)))
    return np.ascontiguousarray(image[ya:yb, xa:xb]), xa, ya


def crop_with_margin(image: Image, box: NDArray[np.float32], *, margin: float = 0.4) -> Image:
    """The box enlarged by `margin` of its size on each side, clipped to the image; RGB uint8 copy."""
    return crop_region(image, box, margin=margin)[0]
