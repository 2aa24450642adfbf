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


def _clustered(people: int, per_person: int, dim: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Templates that cluster by person, as face descriptors do (same person ~0.9 cosine, others far lower)."""
    rng = np.random.default_rng(seed)
    centres = normalise(rng.normal(size=(people, dim)).astype(np.float32))
    owners = np.repeat(np.arange(people), per_person)
    noise = rng.normal(scale=0.3 / np.sqrt(dim), size=(owners.size, dim)).astype(np.float32)
    return normalise(centres[owners] + noise), owners


def test_subset_of_persons_scores_like_the_full_matrix() -> None:
    templates, owners = _clustered(40, 3)
    people = [Identity(i, f"p{i}") for i in range(40)]
    gallery = NumpyGallery(templates, owners, people)
    queries = templates[::7] + 0.01
    full = gallery.person_similarities(queries)
    subset = np.array([39, 3, 17, 0])
    assert np.allclose(gallery.person_similarities(queries, subset), full[:, subset], atol=1e-6)
    persons, sims = gallery.search(queries)
    assert np.array_equal(persons, np.arange(40))
    assert np.allclose(sims, full)


def test_indexed_gallery_finds_the_exact_best_person() -> None:
    from kuzet.recognize.gallery import IndexedGallery, build_gallery

    templates, owners = _clustered(5000, 4, seed=3)
    people = [Identity(i, f"p{i}") for i in range(5000)]
    exact = NumpyGallery(templates, owners, people)
    indexed = build_gallery(templates, owners, people, threshold=10_000)
    assert isinstance(indexed, IndexedGallery)
    rng = np.random.default_rng(9)
    queries = normalise(templates[rng.choice(len(templates), 300)] + rng.normal(scale=0.02, size=(300, 128)))
    exact_best = exact.person_similarities(queries).argmax(axis=1)
    hits = 0
    for q in range(len(queries)):
        persons, sims = indexed.search(queries[q : q + 1])
        best = persons[int(sims[0].argmax())]
        hits += int(best == exact_best[q])
        # scores of the candidates are exact, not approximations from the index
        assert np.allclose(sims, exact.person_similarities(queries[q : q + 1], persons), atol=1e-6)
    assert hits / len(queries) >= 0.99
    assert isinstance(build_gallery(templates[:100], owners[:100], people[:25]), NumpyGallery)
    assert not isinstance(build_gallery(templates[:100], owners[:100], people[:25]), IndexedGallery)
