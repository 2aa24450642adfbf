"""Alignment as dlib's own pipeline does it: the 5-point shape predictor inside the detector's box, dlib's chip.

This is what `face_recognition.face_encodings` does before dlib's descriptor (its default "small" landmark model):
`shape_predictor_5_face_landmarks.dat` places two corners of each eye and the base of the nose inside the face box,
and `dlib.get_face_chips(image, shapes, size=150, padding=0.25)` cuts the chip the descriptor was trained on. The
box is handed over as face_recognition hands over its detector's: clipped to the image, whole pixels,
`dlib.rectangle(left, top, right, bottom)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from kuzet.core.types import CHIP_SIZE, Image
from kuzet.detect.face.dlib_hog import load_dlib_model

DLIB_CHIP_PADDING = 0.25
"""Border around the face in dlib's chip, as a fraction of the face (what face_recognition and dlib's examples use)."""


class DlibShapeAligner:
    """dlib's 5-point shape predictor in the detector's box, then dlib's own face chip (150x150, padding 0.25)."""

    name = "dlib5"
    size = CHIP_SIZE

    def __init__(self, *, model: str | None = None) -> None:
        import dlib

        self._dlib: Any = dlib
        self._predictor: Any = dlib.shape_predictor(model or load_dlib_model("shape5"))

    def shapes(self, image: Image, boxes: NDArray[np.float32]) -> NDArray[np.float32]:
        """The five points of dlib's predictor per box: the corners of each eye and the base of the nose.

        Args:
            image: RGB image, shape (H, W, 3), uint8.
            boxes: Face boxes x1, y1, x2, y2 in pixels, shape (N, 4).

        Returns:
            Points (x, y) in image pixels, shape (N, 5, 2), float32.
        """
        return np.array(
            [[(p.x, p.y) for p in s.parts()] for s in self._detections(np.ascontiguousarray(image), boxes)], np.float32
        ).reshape(len(boxes), 5, 2)

    def align(self, image: Image, boxes: NDArray[np.float32], landmarks: NDArray[np.float32]) -> NDArray[np.uint8]:
        """Chips (N, 150, 150, 3) RGB uint8 from boxes (N, 4) in image pixels; the detector's landmarks are not used.

        dlib shrinks large faces through an image pyramid before sampling, so big photos give unaliased chips.
        """
        n = len(boxes)
        if n == 0:
            return np.empty((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        image = np.ascontiguousarray(image)
        shapes = self._dlib.full_object_detections()
        for s in self._detections(image, boxes):
            shapes.append(s)
        chips = self._dlib.get_face_chips(image, shapes, size=CHIP_SIZE, padding=DLIB_CHIP_PADDING)
        return np.stack([np.asarray(c, np.uint8) for c in chips])

    def _detections(self, image: Image, boxes: NDArray[np.float32]) -> list[Any]:
        h, w = image.shape[:2]
        out = []
        for x1, y1, x2, y2 in np.asarray(boxes, np.float64).tolist():
            # face_recognition's _css_to_rect after _trim_css_to_bounds: whole pixels, clipped to the image.
            rect = self._dlib.rectangle(max(int(x1), 0), max(int(y1), 0), min(int(x2), w), min(int(y2), h))
            out.append(self._predictor(image, rect))
        return out
