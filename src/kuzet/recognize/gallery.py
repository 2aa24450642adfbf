"""Gallery search: exact with numpy for small galleries, FAISS candidates re-scored exactly for large ones."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from kuzet.core.types import Identity
from kuzet.recognize.fusion import ScoreFusion

log = logging.getLogger(__name__)

INDEX_THRESHOLD = 50_000
"""Galleries with at least this many templates are searched through a FAISS index (when faiss is installed)."""


class NumpyGallery:
    """Enrolled templates held in memory; exact cosine search by matrix products.

    Templates are kept grouped by person, so a person's best similarity is one `maximum.reduceat` over a row.

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
        order = np.argsort(owners, kind="stable")
        self.templates = np.ascontiguousarray(templates[order], dtype=np.float32)
        self.owners = owners[order].astype(np.intp)
        self.people = people
        counts = np.bincount(self.owners, minlength=len(people))
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)

    def __len__(self) -> int:
        return int(self.templates.shape[0])

    @property
    def dim(self) -> int:
        """Descriptor length."""
        return int(self.templates.shape[1])

    def person_similarities(
        self, queries: NDArray[np.float32], persons: NDArray[np.intp] | None = None
    ) -> NDArray[np.float32]:
        """Best cosine similarity of each query to each person's templates, shape (N, len(persons)) float32.

        `persons` (indexes into `people`) defaults to everyone; a person without templates scores -1.
        """
        persons = np.arange(len(self.people), dtype=np.intp) if persons is None else np.asarray(persons, np.intp)
        n = queries.shape[0]
        out = np.full((n, persons.size), -1.0, np.float32)
        starts, ends = self._starts[persons], self._starts[persons + 1]
        has = ends > starts
        if n == 0 or not has.any():
            return out
        s, e = starts[has], ends[has]
        if has.all() and persons.size == len(self.people) and np.array_equal(persons, np.arange(persons.size)):
            rows = self.templates
            offsets = s
        else:
            lengths = e - s
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp)
            within = np.arange(int(lengths.sum())) - np.repeat(offsets, lengths)
            rows = self.templates[np.repeat(s, lengths) + within]
        sims = queries.astype(np.float32) @ rows.T
        out[:, has] = np.maximum.reduceat(sims, offsets, axis=1)
        return out

    def search(self, queries: NDArray[np.float32], k: int = 16) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
        """Candidate people for these queries and every query's best similarity to each: ((C,), (N, C)).

        Exact: every person is a candidate. Large galleries override `candidates` with an index.
        """
        persons = self.candidates(queries, k)
        return persons, self.person_similarities(queries, persons)

    def candidates(self, queries: NDArray[np.float32], k: int) -> NDArray[np.intp]:
        """People worth scoring exactly for these queries: here, everyone."""
        del queries, k
        return np.arange(len(self.people), dtype=np.intp)


class IndexedGallery(NumpyGallery):
    """A large gallery: FAISS finds candidates, exact scores decide.

    An inverted-list index (inner product) finds each query's nearest templates, and the people owning them are
    scored exactly against all their templates, so a match's score never depends on the approximate index.

    Args:
        nprobe: Inverted lists visited per query (more: better recall, slower).

    """

    def __init__(
        self,
        templates: NDArray[np.float32],
        owners: NDArray[np.intp],
        people: list[Identity],
        *,
        nprobe: int = 32,
        seed: int = 0,
    ) -> None:
        import faiss

        super().__init__(templates, owners, people)
        m = len(self)
        nlist = max(1, min(int(np.sqrt(m)), m // 39))  # ~1000 lists at a million templates
        quantizer = faiss.IndexFlatIP(self.dim)
        self.index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = self.templates[rng.choice(m, size=min(m, nlist * 50), replace=False)]
        self.index.train(sample)
        self.index.add(self.templates)
        self.index.nprobe = min(nprobe, nlist)
        self._quantizer = quantizer  # faiss keeps a raw pointer to it

    def candidates(self, queries: NDArray[np.float32], k: int) -> NDArray[np.intp]:
        """Owners of the `k` nearest templates of any query."""
        if len(queries) == 0:
            return np.zeros(0, np.intp)
        _, idx = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        found = idx[idx >= 0]
        return np.unique(self.owners[found]).astype(np.intp)


class FusedGallery:
    """One gallery per face model over the same people, searched with queries of every model and the scores fused.

    A query is the models' descriptors side by side, (N, sum of dims), in `fusion`'s model order. Each model
    scores a person by its best template (its own descriptor space); the fused score of a person is
    `fusion.fuse` of those best cosines. A person with no template of some model scores -1 there, so is all but
    never matched: re-embed with `kuzet people reembed`. The candidates are every model's candidates together.

    Args:
        parts: One gallery per fused model, in the fusion's order, each over the same `people` list.
        fusion: The fusion constants.

    """

    def __init__(self, parts: list[NumpyGallery], fusion: ScoreFusion) -> None:
        if len(parts) != len(fusion.models) or len(parts) < 2:
            raise ValueError("one gallery per fused model is needed")
        people = parts[0].people
        if any(p.people is not people and p.people != people for p in parts[1:]):
            raise ValueError("the fused galleries must hold the same people in the same order")
        self.parts = parts
        self.fusion = fusion
        self.people = people
        self._splits = np.cumsum([p.dim for p in parts])[:-1].tolist()

    def __len__(self) -> int:
        """Templates of the first model (each model holds one per photo)."""
        return len(self.parts[0])

    @property
    def dim(self) -> int:
        """Length of a query: every model's descriptor side by side."""
        return int(sum(p.dim for p in self.parts))

    def complete(self) -> NDArray[np.bool_]:
        """Whether each person has templates of every model, shape (P,)."""
        counts = np.stack([np.bincount(g.owners, minlength=len(self.people)) for g in self.parts])
        return np.asarray((counts > 0).all(axis=0))

    def split(self, queries: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """Each model's descriptors of queries (N, dim)."""
        return [np.ascontiguousarray(q) for q in np.split(queries, self._splits, axis=1)]

    def person_similarities(
        self, queries: NDArray[np.float32], persons: NDArray[np.intp] | None = None
    ) -> NDArray[np.float32]:
        """Fused score of each query with each person, shape (N, len(persons)) float32."""
        parts = self.split(queries)
        scores = {
            m.model: g.person_similarities(q, persons).astype(np.float64)
            for m, g, q in zip(self.fusion.models, self.parts, parts, strict=True)
        }
        return self.fusion.fuse(scores).astype(np.float32)

    def search(self, queries: NDArray[np.float32], k: int = 16) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
        """Candidate people (every model's) and the fused score of every query with each: ((C,), (N, C))."""
        parts = self.split(queries)
        found = [g.candidates(q, k) for g, q in zip(self.parts, parts, strict=True)]
        persons = np.unique(np.concatenate(found)).astype(np.intp)
        return persons, self.person_similarities(queries, persons)


Gallery = NumpyGallery | FusedGallery
"""What a camera matches against: one model's gallery, or the fused galleries of several."""


def build_gallery(
    templates: NDArray[np.float32],
    owners: NDArray[np.intp],
    people: list[Identity],
    *,
    threshold: int = INDEX_THRESHOLD,
) -> NumpyGallery:
    """Exact numpy search below `threshold` templates, a FAISS index at or above it (exact if faiss is missing)."""
    if len(templates) >= threshold:
        try:
            return IndexedGallery(templates, owners, people)
        except ImportError:
            log.warning(
                "%d templates but faiss is not installed: searching exactly (pip install faiss-cpu)", len(templates)
            )
    return NumpyGallery(templates, owners, people)
