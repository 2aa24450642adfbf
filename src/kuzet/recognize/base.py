"""Protocols for face embedders and gallery indexes."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class FaceEmbedder(Protocol):
    """Turns aligned face chips into unit-length descriptors."""

    name: str
    dim: int

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Descriptors of chips (N, 150, 150, 3) RGB uint8 -> (N, dim) float32, each of L2 norm 1."""
        ...


class GalleryIndex(Protocol):
    """Nearest-person search over enrolled templates."""

    def __len__(self) -> int:
        """Number of templates."""
        ...

    def person_similarities(self, queries: NDArray[np.float32]) -> NDArray[np.float32]:
        """Best cosine similarity of each query to each person: (N, dim) -> (N, P) float32."""
        ...
