"""Exact gallery search with numpy."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kuzet.core.types import Identity


class NumpyGallery:
    """Enrolled templates held in memory; exact cosine search by one matrix product.

    Args:
        templates: Unit-length descriptors, shape (M, D) float32.
        owners: Index into `people` of each template's person, shape (M,) int.
        people: The enrolled people.

    """

    def __init__(self, templates: NDArray[np.float32], owners: NDArray[np.intp], people: list[Identity]) -> None:
        if templates.ndim != 2 or owners.shape != (templates.shape[0],):
            raise ValueError("templates must be (M, D) and owners (M,)")
        if owners.size and (owners.min() < 0 or owners.max() >= len(people)):
            raise ValueError("every owner must index a person")
        self.templates = np.ascontiguousarray(templates, dtype=np.float32)
        self.owners = owners.astype(np.intp)
        self.people = people

    def __len__(self) -> int:
        return int(self.templates.shape[0])

    def person_similarities(self, queries: NDArray[np.float32]) -> NDArray[np.float32]:
        """Best cosine similarity of each query to each person's templates, shape (N, P) float32."""
        n, p = queries.shape[0], len(self.people)
        out = np.full((n, p), -1.0, np.float32)
        if n == 0 or len(self) == 0:
            return out
        sims = queries.astype(np.float32) @ self.templates.T
        rows = np.repeat(np.arange(n), len(self))
        cols = np.tile(self.owners, n)
        np.maximum.at(out, (rows, cols), sims.ravel())
        return out
