"""Plate text: normalisation and formats by region (what a reader may read, position by position).

A format is a set of layouts from the region's published plate specification, or, where a region's plates vary too
much for that (the United States), a length range and a rule for look-alike characters. A layout is a string of
character classes, one per character, top line first:

| class | what may stand there |
|---|---|
| `L` | a letter of the format's alphabet (e.g. the 12 Cyrillic-Latin look-alikes on Russian plates) |
| `C` | any letter A-Z (district and region codes, old series whose letters the format's alphabet does not restrict) |
| `D` | a digit |
| `A` | a digit or a letter of the format's alphabet |
| `_` | an emblem, coat of arms or seal between characters: one character read there is dropped |
| `/` | a line break (two- and three-line plates: motorcycles, trailers, square plates) |

`X{m,n}` repeats class `X` m to n times (`X{n}`: n times). Reading a layout fixes the confusions that depend on
position: a `0` where a letter must be is an `O`, an `O` where a digit must be is a `0`, and where the alphabet
leaves out a letter that looks like a digit (Dutch, Polish, Spanish, French, Italian serials) that letter is the
digit. The country code on the plate's band (`UA`, `D`, `KZ`) read as text before the registration, or after it
(`RUS` under a Russian region code), is dropped.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from kuzet.core.errors import InputError

_TIMESTAMP = re.compile(r"^(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_REPEAT = re.compile(r"([LCDA_])\{(\d+)(?:,(\d+))?\}")

TO_LETTER = {"0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B"}
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "Z": "2", "A": "4", "S": "5",
            "G": "6", "T": "7", "B": "8"}  # fmt: skip
LOOKALIKE = {"D": "O", "Q": "O", "G": "C", "L": "I", "J": "I", "F": "E", "R": "P", "W": "M", "N": "H", "O": "D",
             "U": "V", "V": "Y", "Y": "X"}  # fmt: skip
"""A letter a region's alphabet leaves out, and the letter of it that a reader most likely mistook for it."""

CYRILLIC = "ABEKMHOPCTYX"
"""The 12 Cyrillic letters that look like Latin ones (А В Е К М Н О Р С Т У Х): Russian plates use only these."""
UA_BY = "ABCEHIKMOPTX"
"""Ukrainian and Belarusian plates: the same look-alikes without У, with І."""


def expand(pattern: str) -> tuple[str, ...]:
    """Every concrete layout a pattern stands for (`C{1,3}D{2}` -> `CD`, ..., `CCCDD`), shortest first."""
    parts: list[list[str]] = []
    pos = 0
    for m in _REPEAT.finditer(pattern):
        parts.extend([[ch] for ch in pattern[pos : m.start()]])
        low = int(m.group(2))
        high = int(m.group(3) or low)
        parts.append([m.group(1) * n for n in range(low, high + 1)])
        pos = m.end()
    parts.extend([[ch] for ch in pattern[pos:]])
    out = ["".join(p) for p in itertools.product(*parts)]
    return tuple(sorted(dict.fromkeys(out), key=len))


@dataclass(frozen=True)
class PlateFormat:
    """One region's plate layouts (from its specification), alphabet and country band."""

    region: str
    layouts: tuple[str, ...] = ()
    """Patterns (see the module docstring); none: any letters and digits of `min_len` to `max_len`."""
    letters: str | None = None
    """The letters `L` and `A` may be (None: A-Z)."""
    bands: tuple[str, ...] = ()
    """Country codes on the plate's band, dropped where they are read before (or after) the registration."""
    min_len: int = 2
    max_len: int = 8
    same_as: tuple[tuple[str, str], ...] = ()
    """Characters a region's plates do not distinguish, as (read, written)."""
    weight: float = 1.0
    """How much a fit counts against other formats' fits (a catch-all counts less than a national layout)."""

    @cached_property
    def _layouts(self) -> tuple[tuple[str, ...], ...]:
        out = []
        for pattern in self.layouts:
            for layout in expand(pattern):
                if self.min_len <= len(layout.replace("_", "").replace("/", "")) <= self.max_len:
                    out.append(tuple(layout.split("/")))
        return tuple(dict.fromkeys(out))

    def fit(self, text: str) -> tuple[str, int] | None:
        """`text` rewritten to this format and the number of characters changed or dropped, or None.

        `text` is one line, or the lines of a multi-line plate top first, separated by `/`; the lines are joined
        in that order. The fit with the fewest changes wins; a tie goes to the layout listed first.
        """
        lines = [ln for ln in (clean(part) for part in text.split("/")) if ln]
        if not lines:
            return None
        for a, b in self.same_as:
            lines = [ln.replace(a, b) for ln in lines]
        if not self.layouts:  # a catch-all reads one line: it knows no line order to join stacked text in
            return (lines[0], 0) if len(lines) == 1 and self.min_len <= len(lines[0]) <= self.max_len else None
        best: tuple[str, int] | None = None
        for variant, dropped in self._without_bands(lines):
            for layout in self._layouts:
                if len(layout) != len(variant):
                    continue
                fitted = self._fit_lines(variant, layout)
                if fitted is not None and (best is None or fitted[1] + dropped < best[1]):
                    best = (fitted[0], fitted[1] + dropped)
        return best

    def _without_bands(self, lines: list[str]) -> Iterator[tuple[list[str], int]]:
        """The lines as read, then with a band's country code cut from the front or the back (one change each)."""
        yield lines, 0
        for band in self.bands:
            first, last = lines[0], lines[-1]
            if first.startswith(band) and len(first) > len(band):
                yield [first[len(band) :], *lines[1:]], 1
            if len(lines) > 1 and first == band:
                yield lines[1:], 1
            if last.endswith(band) and len(last) > len(band):
                yield [*lines[:-1], last[: -len(band)]], 1

    def _fit_lines(self, lines: list[str], layout: tuple[str, ...]) -> tuple[str, int] | None:
        out, changes = [], 0
        for line, classes in zip(lines, layout, strict=True):
            fitted = self._fit_line(line, classes)
            if fitted is None:
                return None
            out.append(fitted[0])
            changes += fitted[1]
        return "".join(out), changes

    def _fit_line(self, line: str, classes: str) -> tuple[str, int] | None:
        fixed = classes.replace("_", "")
        extra = len(line) - len(fixed)
        slots = [i for i, c in enumerate(classes) if c == "_"]
        if extra < 0 or extra > len(slots):
            return None
        best: tuple[str, int] | None = None
        for used in itertools.combinations(slots, extra):
            # the classes with each used emblem slot kept as "_" (its character dropped), the others removed
            kept = "".join(c for i, c in enumerate(classes) if c != "_" or i in used)
            out, changes = [], extra
            for ch, cls in zip(line, kept, strict=True):
                got = self._char(ch, cls)
                if got is None:
                    break
                if got != ch:
                    changes += 1
                if cls != "_":
                    out.append(got)
            else:
                if best is None or changes < best[1]:
                    best = ("".join(out), changes)
        return best

    def _char(self, ch: str, cls: str) -> str | None:
        """`ch` as class `cls` allows it (the look-alike it most likely is), or None if it cannot stand there."""
        letters = self.letters
        if cls == "_":
            return ch
        if cls == "D":
            return ch if ch.isdigit() else TO_DIGIT.get(ch)
        if cls == "C":
            return ch if ch.isalpha() else TO_LETTER.get(ch)
        if cls == "A":
            if ch.isdigit() or letters is None or ch in letters:
                return ch
            return TO_DIGIT.get(ch) or _in(LOOKALIKE.get(ch), letters)
        # "L"
        if ch.isdigit():
            letter = TO_LETTER.get(ch)
            return _in(letter, letters) or _in(LOOKALIKE.get(letter or ""), letters)
        if letters is None or ch in letters:
            return ch
        return _in(LOOKALIKE.get(ch), letters)


def _in(ch: str | None, letters: str | None) -> str | None:
    return ch if ch is not None and (letters is None or ch in letters) else None


_NO_IOU = "ABCDEFGHJKLMNPQRSTVWXYZ"
_NO_IOQU = "ABCDEFGHJKLMNPRSTVWXYZ"

# National formats, summarised from each country's published plate specification (see docs/plates.md): current
# layouts first (a tie between layouts goes to the first), then older ones still on the road, then two- and
# three-line plates (motorcycles, trailers, square plates), top line first.
FORMATS: dict[str, PlateFormat] = {
    fmt.region: fmt
    for fmt in (
        # Kazakhstan since 2012: 3 digits, 3 letters (people) or 2 (companies), 2-digit region code on the right
        # (123ABC02, 123AB02); 1993 series: region letter, 3 digits, 2-3 letters (A123BC, A123BCD); two-line
        # motorcycle and trailer plates (0038SC, 12AB02).
        PlateFormat(
            "kz",
            layouts=("DDDLLLDD", "DDDLLDD", "CDDDLLL", "CDDDLL", "DDDD/LL", "DD/LLDD", "DDD/LLDD"),
            bands=("KZ",),
        ),
        # Russia (GOST R 50577): letter, 3 digits, 2 letters, region code of 2-3 digits (A123BC77, A123BC177);
        # trailers AB1234 77; square plates A123/BC77; motorcycles 1234/AB77. "RUS" is printed under the region.
        PlateFormat(
            "ru",
            letters=CYRILLIC,
            max_len=9,
            layouts=("LDDDLLD{2,3}", "LLDDDDD{2,3}", "LDDD/LLD{2,3}", "DDDD/LLD{2,3}"),
            bands=("RUS", "RU"),
        ),
        # Ukraine since 2004: 2-letter region, 4 digits, 2-letter series (AA1234BB); three-line motorcycle plates
        # since 2015 (BE/0886/AA); two-line motorcycle and trailer plates 1234/AB; 1995 series 12345AB and
        # A1234BC, square ones 12345/AB.
        PlateFormat(
            "ua",
            letters=UA_BY,
            layouts=("LLDDDDLL", "DDDDDLL", "LDDDDLL", "LL/DDDD/LL", "DDDD/LL", "DDDDD/LL", "LLDDDD/LL"),
            bands=("UA",),
        ),
        # Belarus since 2004: 4 digits, 2 letters, region digit (1234AB7); trailers A1234B7; motorcycles 1234/AB7;
        # 1992 series 1234AB.
        PlateFormat("by", letters=UA_BY, layouts=("DDDDLLD", "LDDDDLD", "DDDD/LLD", "DDDDLL"), bands=("BY",)),
        # Slovakia: district code, coat of arms, 3 digits, 2 letters (BA123XY; since 2023 without district).
        PlateFormat("sk", layouts=("CC_DDDCC", "CC_/DDDCC"), bands=("SK",)),
        # Czechia since 2001: region digit-letter-character, 4 digits (1A2 3456); motorcycles on two lines.
        PlateFormat("cz", layouts=("DCADDDD", "DCA/DDDD", "CCCDDDD", "CCDDDD"), bands=("CZ",)),
        # Poland since 2000: district of 2-3 letters, then a serial that leaves out B, D, I, O and Z.
        PlateFormat(
            "pl",
            letters="ACEFGHJKLMNPRSTUVWXY",
            layouts=(
                "CCDDDDD",
                "CCDDDDL",
                "CCDDDLL",
                "CCDLDDD",
                "CCDLLDD",
                "CCCLDDD",
                "CCCDDLL",
                "CCCDLDD",
                "CCCDDLD",
                "CCCDLLD",
                "CCCLLDD",
                "CCCDDDDD",
                "CCCDDDDL",
                "CCCDDDLL",
                "CC/DDDDD",
                "CCC/DDDDD",
            ),
            bands=("PL",),
        ),
        # Germany: district of 1-3 letters, the registration seal, 1-2 letters, 1-4 digits, 8 characters at most.
        PlateFormat("de", layouts=("C{1,3}_C{1,2}D{1,4}", "C{1,3}_C{1,2}/D{1,4}"), bands=("D",), min_len=3, max_len=8),
        # Austria: district of 1-2 letters, the coat of arms, digits then letters.
        PlateFormat("at", layouts=("C{1,2}_D{1,5}C{1,3}", "C{1,2}_/D{1,5}C{1,3}"), bands=("A",), min_len=4),
        # Hungary: 3 letters, 3 digits (ABC123); since 2022 AA AA-123 with the emblem between; motorcycles.
        PlateFormat("hu", layouts=("CCCDDD", "CC_CCDDD", "CCC/DDD", "CC/CCDDD"), bands=("H",)),
        # Croatia: city code, coat of arms, 3-4 digits, 1-2 letters (ZG1234AB); two- and three-line plates.
        PlateFormat("hr", layouts=("CC_D{3,4}C{1,2}", "CC_/D{3,4}C{1,2}", "CC_/D{3,4}/C{1,2}"), bands=("HR",)),
        # Slovenia: city code, coat of arms, 4-5 letters and digits (LJAB123, LJ12ABC).
        PlateFormat("si", layouts=("CC_A{4,5}", "CC_/A{3,5}"), bands=("SLO",)),
        # Lithuania, Latvia, Estonia.
        PlateFormat("lt", layouts=("CCCDDD", "DDD/CC", "CCDDD"), bands=("LT",)),
        PlateFormat("lv", layouts=("CCD{3,4}", "CC/D{3,4}"), bands=("LV",)),
        PlateFormat("ee", layouts=("DDDCCC", "DDDCC", "DDD/CCC"), bands=("EST",)),
        # United Kingdom since 2001: area, age digits, 3 letters (AB12CDE), no I or Q; prefix and suffix series.
        PlateFormat(
            "gb",
            letters="ABCDEFGHJKLMNOPRSTUVWXYZ",
            layouts=("LLDDLLL", "LLDD/LLL", "LD{1,3}CCC", "CCCD{1,3}L"),
            bands=("GB", "UK"),
        ),
        # France: SIV since 2009 AB-123-CD without I, O, U; the department band on the right is small print;
        # FNI series 1234 AB 75; motorcycles AB-123/CD.
        PlateFormat("fr", letters=_NO_IOU, layouts=("LLDDDLL", "LLDDD/LL", "D{1,4}C{1,3}DD"), bands=("F",)),
        # Italy since 1994: AB 123CD without I, O, Q, U; motorcycles AB/12345; square rear plates AB/123CD.
        PlateFormat("it", letters=_NO_IOQU, layouts=("LLDDDLL", "LL/DDDDD", "LL/DDDLL"), bands=("I",)),
        # Spain since 2000: 4 digits, 3 consonants (1234BCD); provincial series M1234AB.
        PlateFormat(
            "es", letters="BCDFGHJKLMNPRSTVWXYZ", layouts=("DDDDLLL", "DDDD/LLL", "C{1,2}DDDDC{1,2}"), bands=("E",)
        ),
        # Netherlands: the sidecodes (XX-99-99 ... 999-XX-9), consonants only (no vowels, C, Q, W, Y).
        PlateFormat(
            "nl",
            letters="BDFGHJKLMNPRSTVXZ",
            layouts=(
                "LLDDDD",
                "DDDDLL",
                "DDLLDD",
                "LLDDLL",
                "LLLLDD",
                "DDLLLL",
                "DDLLLD",
                "DLLLDD",
                "LLDDDL",
                "LDDDLL",
                "LLLDDL",
                "LDDLLL",
                "DLLDDD",
                "DDDLLD",
            ),
            bands=("NL",),
        ),
        # Belgium since 2010: 1-ABC-123; older ABC-123 and 123-ABC.
        PlateFormat("be", layouts=("DCCCDDD", "CCCDDD", "DDDCCC"), bands=("B",)),
        # Sweden (no I, Q, V), Finland, Denmark, Norway, Portugal, Romania, Bulgaria (Cyrillic look-alikes),
        # Greece, Serbia and Montenegro (coat of arms after the city code), Switzerland, Ireland.
        PlateFormat("se", letters="ABCDEFGHJKLMNOPRSTUWXYZ", layouts=("LLLDDD", "LLLDDL", "LLL/DDD"), bands=("S",)),
        PlateFormat("fi", layouts=("CCCDDD", "CCCD{1,2}", "CCDDD"), bands=("FIN",)),
        PlateFormat("dk", layouts=("CCDDDDD", "CC/DDDDD"), bands=("DK",)),
        PlateFormat("no", layouts=("CCDDDDD", "CCDDDD", "CC/DDDDD"), bands=("N",)),
        PlateFormat("pt", layouts=("CCDDCC", "DDCCDD", "DDDDCC", "CCDDDD"), bands=("P",)),
        PlateFormat("ro", layouts=("CDD{2,3}CCC", "CCDDCCC", "CC/DDCCC"), bands=("RO",)),
        PlateFormat("bg", letters=CYRILLIC, layouts=("L{1,2}DDDDLL", "L{1,2}DDDD/LL"), bands=("BG",)),
        PlateFormat("gr", letters="ABEHIKMNOPTXYZ", layouts=("LLLDDDD", "LLL/DDDD"), bands=("GR",)),
        PlateFormat("rs", layouts=("CC_D{3,4}CC", "CC_/D{3,4}CC"), bands=("SRB",)),
        PlateFormat("me", layouts=("CC_CCDDD", "CC_/CCD{2,3}"), bands=("MNE",)),
        PlateFormat("ch", layouts=("CCD{1,6}",), bands=("CH",)),
        PlateFormat("ie", layouts=("D{2,3}C{1,2}D{1,6}",), bands=("IRL",)),
        # Brazil: old grey plates ABC1234 and Mercosur ABC1D23
        PlateFormat("br", layouts=("LLLDDDD", "LLLDLDD")),
        # United States: state layouts vary; most states do not issue O or Q as letters: read as 0
        PlateFormat("us", min_len=2, max_len=8, same_as=(("O", "0"), ("Q", "0")), weight=0.8),
        # Europe, any other layout: letters and digits, 4-8 long, counting less than a national layout's fit
        PlateFormat("eu-other", min_len=4, max_len=8, weight=0.5),
    )
}

EUROPE = ("at", "be", "bg", "ch", "cz", "de", "dk", "ee", "es", "fi", "fr", "gb", "gr", "hr", "hu", "ie", "it", "lt",
          "lv", "me", "nl", "no", "pl", "pt", "ro", "rs", "se", "si", "sk", "eu-other")  # fmt: skip
GROUPS: dict[str, tuple[str, ...]] = {"eu": EUROPE, "uk": ("gb",)}
"""Names that stand for several formats: `eu` is every European format above (the country band says which)."""


def known_region(name: str) -> bool:
    """Whether `name` is a format's region or a group of them."""
    return name.lower() in FORMATS or name.lower() in GROUPS


def plate_formats(regions: Iterable[str]) -> list[PlateFormat]:
    """The formats of the named regions and groups, in order; an unknown name is an error naming the known ones."""
    out: list[PlateFormat] = []
    for name in regions:
        key = name.lower()
        names = GROUPS.get(key, (key,))
        for member in names:
            fmt = FORMATS.get(member)
            if fmt is None:
                known = ", ".join(sorted({*FORMATS, *GROUPS}))
                raise InputError(f"unknown plate region {name!r}", hint=f"use one of {known}")
            if fmt not in out:
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
    """The best reading of raw `text` (lines top first, separated by `/`) under any of `formats`, or None.

    A fit that changes or drops characters loses a little score per change; a fit with no digit at all is unlikely
    to be a plate (it is a word: a state name, a dealer's name) and loses most of its score, as does a read that
    starts with a date (YYYYMMDD: the camera's time overlay).
    """
    raw = "/".join(ln for ln in (clean(part) for part in text.split("/")) if ln)
    best: PlateText | None = None
    for fmt in formats:
        fitted = fmt.fit(raw)
        if fitted is None:
            continue
        out, changes = fitted
        score = confidence * (0.9**changes) * fmt.weight
        if not any(c.isdigit() for c in raw):
            score *= 0.2
        if len(out) < 5:
            score *= 0.6
        if _TIMESTAMP.match(out):
            score *= 0.05  # the camera's own date/time overlay, not a plate
        if best is None or score > best.score:
            best = PlateText(out, fmt.region, score)
    return best
