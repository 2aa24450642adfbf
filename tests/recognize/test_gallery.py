from __future__ import annotations

import numpy as np
import pytest

from kuzet.core.types import Identity
from kuzet.recognize.dlib_resnet import normalise
from kuzet.recognize.gallery import NumpyGallery


def test_person_similarity_is_best_template_per_person() -> None:
    rng = np.random.default_rng(1)
    templates = normalise(rng.normal(size=(7, 16)).astype(np.float32))
    owners = np.array([0, 0, 1, 2, 2, 2, 1])
    people = [Identity(10 + i, f"p{i}") for i in range(3)]
    gallery = NumpyGallery(templates, owners, people)
    queries = normalise(rng.normal(size=(4, 16)).astype(np.float32))
    got = gallery.person_similarities(queries)
    sims = queries @ templates.T
    for q in range(4):
        for p in range(3):
            assert got[q, p] == pytest.approx(sims[q, owners == p].max(), abs=1e-6)


def test_empty_gallery_gives_minus_one() -> None:
    gallery = NumpyGallery(np.zeros((0, 8), np.float32), np.zeros(0, np.intp), [])
    assert gallery.person_similarities(np.ones((2, 8), np.float32)).shape == (2, 0)
    assert len(gallery) == 0


def test_owner_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="owner"):
        NumpyGallery(np.zeros((1, 8), np.float32), np.array([3]), [Identity(1, "a")])
