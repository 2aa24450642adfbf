"""The face detector Protocol."""

from __future__ import annotations

from typing import Protocol

from kuzet.core.types import Detections, Image


class FaceDetector(Protocol):
    """Finds faces and their five landmarks in an RGB image."""

    name: str

    def detect(self, image: Image) -> Detections:
        """Faces in `image` (RGB, (H, W, 3) uint8), with landmarks, best score first."""
        ...
