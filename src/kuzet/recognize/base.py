"""Protocols for face embedders and gallery indexes."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class FaceEmbedder(Protocol):
    """Turns aligned face chips into unit-length descriptors.

    `name` names the descriptor space: templates are stored under it, and embedders with the same name (dlib's
    network on dlib, onnxruntime or PyTorch) give interchangeable descriptors. `runtime` says what runs it. Each
    embedder reads the chips of its own aligner (`build_face_aligner` of the same config): dlib's 150x150 chip,
    SFace's 112x112 ArcFace crop.
    """

    name: str
    dim: int
    runtime: str

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Descriptors of chips (N, S, S, 3) RGB uint8 -> (N, dim) float32, each of L2 norm 1 (S: 150 for dlib)."""
        ...


class FaceAligner(Protocol):
    """Cuts the chips an embedder was trained on out of an image, from the detector's boxes and landmarks.

    `name` is the config's `alignment` value. Chips of the same face from different aligners describe it almost
    alike (cosine ~0.99), so templates stay valid, but a calibration is measured with one of them. `size` is the
    chip's side in pixels (150 for dlib's chip, 112 for the ArcFace crop).
    """

    name: str
    size: int

    def align(
        self, image: NDArray[np.uint8], boxes: NDArray[np.float32], landmarks: NDArray[np.float32]
    ) -> NDArray[np.uint8]:
        """Chips (N, size, size, 3) RGB uint8 of the faces in an RGB uint8 image (H, W, 3).

        Boxes (N, 4) are x1, y1, x2, y2 and landmarks (N, 5, 2) are x, y, both in the image's pixels.
        """
        ...


class GalleryIndex(Protocol):
    """Nearest-person search over enrolled templates."""

    def __len__(self) -> int:
        """Number of templates."""
        ...

    def search(self, queries: NDArray[np.float32], k: int = 16) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
        """Candidate people (indexes, (C,)) and each query's best cosine similarity to each, (N, C) float32.

        Every person who could be a query's best match is a candidate; their scores are exact.
        """
        ...
