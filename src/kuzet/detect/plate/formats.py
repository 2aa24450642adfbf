"""Plate text: normalisation and formats by region (what a reader may read, position by position).

A format is a sequence of character classes (`L` letter, `D` digit, `A` either) or, where a region's plates vary too
much for that (the United States), a length range and a rule for look-alike characters. Reading a format fixes the
confusions that depend on position: a `0` where a letter must be is an `O`, an `O` where a digit must be is a `0`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kuzet.core.errors import InputError

_TIMESTAMP = re.compile(r"^(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")

TO_LETTER = {"0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B"}
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "Z": "2", "A": "4", "S": "5",
            "G": "6", "T": "7", "B": "8"}  # fmt: skip


@dataclass(frozen=True)
class PlateFormat:
    """One region's plate layouts."""

    region: str
    layouts: tuple[str, ...] = ()
    min_len: int = 2
    max_len: int = 8
    same_as: tuple[tuple[str, str], ...] = ()
    """Characters a region's plates do not distinguish, as (read, written)."""

    def fit(self, text: str) -> tuple[str, int] | None:
        """`text` rewritten to this format and the number of characters changed, or None if it cannot fit."""
        for a, b in self.same_as:
            text = text.replace(a, b)
        if not self.layouts:
            return (text, 0) if self.min_len <= len(text) <= self.max_len else None
        best: tuple[str, int] | None = None
        for layout in self.layouts:
            if len(layout) != len(text):
                continue
            out, changes = [], 0
            for ch, cls in zip(text, layout, strict=True):
                if cls == "L" and ch.isdigit():
                    if ch not in TO_LETTER:
                        break
                    out.append(TO_LETTER[ch])
                    changes += 1
                elif cls == "D" and ch.isalpha():
                    if ch not in TO_DIGIT:
                        break
                    out.append(TO_DIGIT[ch])
                    changes += 1
                else:
                    out.append(ch)
            else:
                if best is None or changes < best[1]:
                    best = ("".join(out), changes)
        return best


FORMATS: dict[str, PlateFormat] = {
    # Kazakhstan since 2012: 3 digits, 2-3 letters, 2-digit region code (123ABC02, 123AB02)
    "kz": PlateFormat("kz", layouts=("DDDLLLDD", "DDDLLDD")),
    # Brazil: old grey plates ABC1234 and Mercosur ABC1D23
    "br": PlateFormat("br", layouts=("LLLDDDD", "LLLDLDD")),
    # Europe: too many national layouts; letters and digits, 4-8 long, at least one digit
    "eu": PlateFormat("eu", min_len=4, max_len=8),
    # United States: state layouts vary; most states do not issue O or Q as letters: read as 0
    "us": PlateFormat("us", min_len=2, max_len=8, same_as=(("O", "0"), ("Q", "0"))),
}


def plate_formats(regions: Iterable[str]) -> list[PlateFormat]:
    """The formats of the named regions, in order; an unknown name is an error naming the known ones."""
    out = []
    for name in regions:
        fmt = FORMATS.get(name.lower())
        if fmt is None:
            raise InputError(f"unknown plate region {name!r}", hint=f"use one of {', '.join(sorted(FORMATS))}")
        out.append(fmt)
    return out


def clean(text: str) -> str:
    """Upper case, letters and digits only (spaces, dashes and dots dropped)."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


CONFUSABLE = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8"})
"""Characters a plate reader (or a witness) confuses, mapped to one of each pair, for searching."""


def near(query: str, plate: str, *, edits: int = 1) -> bool:
    """Whether a stored plate may be the one searched for.

    The same once confusable characters (O/0, I/1, S/5, B/8, Z/2) count as one, or at most `edits` characters off
    (one wrong, missing or extra); a query shorter than 4 characters must match exactly.
    """
    a, b = clean(query).translate(CONFUSABLE), clean(plate).translate(CONFUSABLE)
    if len(a) < 4:
        return bool(a) and a == b
    if abs(len(a) - len(b)) > edits:
        return False
    row = list(range(len(b) + 1))  # Levenshtein distance, one row at a time
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1] <= edits


@dataclass(frozen=True)
class PlateText:
    """A normalised plate and how much to trust it."""

    text: str
    region: str | None
    score: float


def normalise(text: str, confidence: float, formats: list[PlateFormat]) -> PlateText | None:
    """The best reading of raw `text` under any of `formats`, or None if it fits none.

    A fit that changes characters loses a little score per change; a fit with no digit at all is unlikely to be a
    plate (it is a word: a state name, a dealer's name) and loses most of its score, as does a read that starts
    with a date (YYYYMMDD: the camera's time overlay).
    """
    raw = clean(text)
    best: PlateText | None = None
    for fmt in formats:
        fitted = fmt.fit(raw)
        if fitted is None:
            continue
        out, changes = fitted
        score = confidence * (0.9**changes)
        if not any(c.isdigit() for c in raw):
            score *= 0.2
        if len(out) < 5:
            score *= 0.6
        if _TIMESTAMP.match(out):
            score *= 0.05  # the camera's own date/time overlay, not a plate
        if best is None or score > best.score:
            best = PlateText(out, fmt.region, score)
    return best
