"""Plates across a track: one plate voted from many reads (formats and normalisation: `detect.plate.formats`)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from kuzet.detect.plate.formats import (
    FORMATS,
    GROUPS,
    PlateFormat,
    PlateText,
    clean,
    known_region,
    normalise,
    plate_formats,
)

__all__ = [
    "FORMATS",
    "GROUPS",
    "PlateFormat",
    "PlateText",
    "char_errors",
    "clean",
    "known_region",
    "normalise",
    "plate_formats",
    "vote",
]


def vote(reads: list[PlateText]) -> PlateText | None:
    """One plate from a track's reads: the most supported length, then per position the best-supported character.

    Support is the sum of read scores, so one confident read outweighs several poor ones.
    """
    if not reads:
        return None
    by_len: dict[int, float] = {}
    for r in reads:
        by_len[len(r.text)] = by_len.get(len(r.text), 0.0) + r.score
    length = max(by_len, key=lambda n: (by_len[n], n))
    same = [r for r in reads if len(r.text) == length]
    chars = []
    for i in range(length):
        tally: dict[str, float] = {}
        for r in same:
            tally[r.text[i]] = tally.get(r.text[i], 0.0) + r.score
        chars.append(max(tally, key=lambda c: (tally[c], c)))
    text = "".join(chars)
    regions = Counter(r.region for r in same if r.text == text) or Counter(r.region for r in same)
    support = sum(r.score for r in same if r.text == text) / max(1e-9, sum(r.score for r in reads))
    return PlateText(text, regions.most_common(1)[0][0], float(np.clip(support, 0.0, 1.0)))


def char_errors(read: str, truth: str) -> int:
    """Levenshtein distance between two strings (character edits)."""
    prev = list(range(len(truth) + 1))
    for i, a in enumerate(read, 1):
        cur = [i]
        for j, b in enumerate(truth, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1]
