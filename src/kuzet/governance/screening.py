"""Screening of categories and free text against prohibited categories and labels, across languages and scripts.

Text is normalised before matching, so that a label cannot be hidden from the screen by how it is written:

1. Unicode NFKC (full-width and compatibility forms), then every default-ignorable and format character is dropped
   (zero-width spaces and joiners, soft hyphens, word joiners, byte-order marks, variation selectors...);
2. case folding, and accents and other combining marks removed;
3. the Unicode TR39 confusable skeleton (ICU's SpoofChecker, through PyICU), which maps look-alike letters of every
   script to one prototype ("αctivist", "ɑctivist" and "аctivist" with a Cyrillic "а" all become "activist");
4. digits and symbols used as letters folded with the letters they stand for (`4ctivist`, `j0urnalist`, `b1ogger`):
   this small table is leetspeak, not cross-script confusables, which come only from TR39;
5. three views of the result are matched: words split at punctuation (`civil-activist`), words joined across
   punctuation inside them (`act-ivist`, `a.c.t.i.v.i.s.t`), and, for labels of seven or more letters, the whole
   text with every space and mark removed (`act ivist`).

A label matches a word that starts with it (Russian and Kazakh inflect: "активиста", "журналистов", "белсенділер";
English plurals: "activists"); labels of six letters or more also match inside longer words ("photojournalist").
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from kuzet.core.i18n import Phrase

PROHIBITED_CATEGORIES: dict[str, str] = {
    "political-opinion": "political opinion",
    "religion-or-belief": "religion or belief",
    "ethnicity-or-race": "ethnicity or race",
    "sexual-orientation": "sexual orientation",
    "health": "health",
    "trade-union-membership": "trade-union membership",
}
"""Special categories of personal data that no watchlist may target (key: category, value: what it is)."""

PROHIBITED_LABELS: dict[str, dict[str, list[str]]] = {
    "political opinion or activity": {
        "en": [
            "activist",
            "civil activist",
            "human rights defender",
            "journalist",
            "reporter",
            "blogger",
            "vlogger",
            "protester",
            "protestor",
            "demonstrator",
            "opposition",
            "dissident",
            "political",
            "politician",
            "extremist views",
            "critic of the government",
        ],
        "ru": [
            "активист",
            "гражданский активист",
            "правозащит",
            "журналист",
            "репортер",
            "репортёр",
            "блогер",
            "блоггер",
            "протест",
            "митингу",
            "демонстрант",
            "оппозиц",
            "диссидент",
            "политическ",
            "политик",
        ],
        "kk": [
            "белсенді",
            "азаматтық белсенді",
            "құқық қорғаушы",
            "журналист",
            "тілші",
            "блогер",
            "наразылық",
            "шеруші",
            "оппозиция",
            "оппозициялық",
            "саяси",
        ],
        # Russian and Kazakh labels typed in Latin letters (transliteration, not look-alikes).
        "ru-latn": ["aktivist", "zhurnalist", "jurnalist", "bloger", "oppozits", "pravozashchit", "dissident"],
        "kk-latn": ["belsendi", "tilshi", "sayasi", "sajasi", "narazylyk", "sherushi"],
    },
    "religion or belief": {
        "en": [
            "religion",
            "religious",
            "believer",
            "muslim",
            "christian",
            "jewish",
            "atheist",
            "protestant",
            "catholic",
        ],
        "ru": ["религи", "верующ", "мусульман", "христиан", "иудей", "атеист"],
        "kk": ["діни", "дін", "мұсылман", "христиан", "атеист"],
    },
    "ethnicity or race": {
        "en": ["ethnic", "ethnicity", "race", "racial", "nationality"],
        "ru": ["этническ", "национальност", "раса", "расов"],
        "kk": ["этникалық", "ұлты", "нәсіл"],
    },
    "sexual orientation": {
        "en": ["sexual orientation", "gay", "lesbian", "lgbt", "homosexual", "bisexual", "transgender", "queer"],
        "ru": ["сексуальная ориентация", "гей", "лесби", "лгбт", "гомосексуал", "бисексуал", "трансгендер"],
        "kk": ["жыныстық бағдар", "лгбт", "гей"],
    },
    "health": {
        "en": ["health", "medical condition", "hiv", "disability", "disabled", "mental illness", "pregnant"],
        "ru": ["здоровь", "диагноз", "вич", "инвалид", "психическ", "беремен"],
        "kk": ["денсаулық", "диагноз", "мүгедек", "жүкті"],
    },
    "trade-union membership": {
        "en": ["trade union", "union member", "unionist", "labour organiser", "labor organizer", "strike leader"],
        "ru": ["профсоюз", "забастов"],
        "kk": ["кәсіподақ", "ереуіл"],
    },
}
"""Built-in prohibited labels by protected ground and language; a policy file can only add to them."""

# Digits and symbols people type for letters (leetspeak). Cross-script look-alikes are not listed here: they come from
# the Unicode TR39 skeleton.
_LEET = {"0": "o", "1": "l", "|": "l", "!": "l", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t"}
_ALPHABET = "abcdefghijklmnopqrstuvwxyz" + "".join(map(chr, range(0x430, 0x460))) + "әғқңөұүһі"
"""The letters labels are written in (Latin, Cyrillic, Kazakh): every other letter is folded onto one of them."""

_ICU = threading.local()


def _spoof_checker() -> Any:
    """ICU's SpoofChecker (one per thread; ICU objects are not shared between threads)."""
    checker = getattr(_ICU, "checker", None)
    if checker is None:
        import icu

        checker = _ICU.checker = icu.SpoofChecker()
    return checker


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _skeleton(text: str) -> str:
    return _strip_marks(str(_spoof_checker().getSkeleton(0, text)))


@cache
def _letter_classes() -> dict[str, str]:
    """TR39 skeleton -> the letter that stands for every letter with that skeleton, in lower or upper case.

    Two letters of the alphabet whose skeletons agree in either case are one class ("a" and Cyrillic "а"; "i", "l"
    and Kazakh "і"; "k" and "к"), so that a label written in either script matches text written in the other.
    """
    letters = [c for c in _ALPHABET if unicodedata.category(c) == "Ll"]
    parent = {c: c for c in letters}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    owner: dict[str, str] = {}
    for c in letters:
        for key in {_skeleton(c), _skeleton(c.upper())}:
            if key in owner:
                a, b = root(owner[key]), root(c)
                parent[max(a, b)] = min(a, b)
            else:
                owner[key] = c
    table = {key: root(c) for key, c in owner.items()}
    table.update({c: root(c) for c in letters})
    return table


@lru_cache(maxsize=65536)
def _fold_char(c: str) -> str:
    """One character folded onto the label alphabet (letters), leetspeak undone; anything else kept, case-folded.

    The skeleton of the character as written comes first (NFKC could turn a look-alike into another letter: the
    lunate sigma "ϲ" looks like "c" but its compatibility form is a final sigma), then its NFKC, case-folded form.
    """
    table = _letter_classes()
    key = _skeleton(_LEET.get(c, c))
    if key in table:
        return table[key]
    out = []
    for ch in _strip_marks(unicodedata.normalize("NFKC", c)).casefold():
        ch = _LEET.get(ch, ch)
        out.append(table.get(ch) or table.get(_skeleton(ch)) or ch)
    return "".join(out)


def _ignorable(c: str) -> bool:
    """Default-ignorable code points (TR44) and format characters: invisible, so a label can hide behind them."""
    if unicodedata.category(c) == "Cf":
        return True
    import icu

    return bool(icu.Char.hasBinaryProperty(c, icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT))


def _normalise(text: str) -> str:
    """Steps 1-4 of the module docstring: one string of folded characters, punctuation still in place."""
    text = unicodedata.normalize("NFD", text)
    return "".join(_fold_char(c) for c in text if not _ignorable(c) and not unicodedata.combining(c))


def _words(text: str, *, join: bool) -> list[str]:
    """Words of normalised text: punctuation splits words, or (`join`) is dropped so that its pieces join."""
    if join:
        text = "".join(c for c in text if c.isalnum() or c.isspace())
    return "".join(c if c.isalnum() else " " for c in text).split()


def fold(text: str) -> str:
    """Normalise text for matching (see the module docstring): words separated by single spaces."""
    return " ".join(_words(_normalise(text), join=False))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a value was refused."""

    field: str
    value: str
    reason: str


_INFLECTIONS_RAW = (
    "s es a u y i e om ov ev ey ei am ami ah "
    "а у ы и е ом ов ев ей ам ами ах ой ою "
    "лар лер дар дер тар тер ның нің дың дің тың тің ға ге қа ке да де та те ны ні ды ді ты ті"
)
"""Plural and case endings that may follow a short label (longer labels match any word they start)."""


@cache
def _inflections() -> frozenset[str]:
    return frozenset(_normalise(e) for e in _INFLECTIONS_RAW.split())


def _word_matches(w: str, lw: str) -> bool:
    if w == lw or (len(lw) >= 6 and lw in w) or (len(lw) >= 4 and w.startswith(lw)):
        return True
    return w.startswith(lw) and w[len(lw) :] in _inflections()


def _matches(words: list[str], label_words: list[str]) -> bool:
    n = len(label_words)
    return any(
        all(_word_matches(w, lw) for w, lw in zip(words[i : i + n], label_words, strict=True))
        for i in range(len(words) - n + 1)
    )


COMPACT_MIN = 7
"""Labels with at least this many letters are also searched in the text with all spaces and marks removed."""


class Screener:
    """Checks text against every prohibited label (built-in plus policy additions)."""

    def __init__(self, extra_labels: dict[str, list[str]] | None = None, extra_categories: list[str] | None = None):
        self._labels: list[tuple[list[str], str, str, str, str]] = []
        for ground, by_lang in PROHIBITED_LABELS.items():
            for lang, labels in by_lang.items():
                for label in labels:
                    self._add(label, lang, ground)
        for lang, labels in (extra_labels or {}).items():
            for label in labels:
                self._add(label, lang, "a label the policy prohibits")
        self.categories = dict(PROHIBITED_CATEGORIES)
        for c in extra_categories or []:
            self.categories.setdefault(c, "a category the policy prohibits")

    def _add(self, label: str, lang: str, ground: str) -> None:
        words = fold(label).split()
        if words:
            self._labels.append((words, "".join(words), label, lang, ground))

    def screen(self, field: str, value: str) -> Refusal | None:
        """A refusal if `value` contains a prohibited label, however it is written, else None."""
        normal = _normalise(value)
        split, joined = _words(normal, join=False), _words(normal, join=True)
        if not split:
            return None
        compact = "".join(joined)
        for label_words, label_compact, label, lang, ground in self._labels:
            if (
                _matches(split, label_words)
                or _matches(joined, label_words)
                or (len(label_compact) >= COMPACT_MIN and label_compact in compact)
            ):
                return Refusal(
                    field,
                    value,
                    Phrase(
                        "{field} contains the prohibited label {label!r} ({lang}: {ground})",
                        field=field,
                        label=label,
                        lang=lang,
                        ground=ground,
                    ),
                )
        return None

    def screen_all(self, fields: dict[str, str]) -> Refusal | None:
        """The first refusal among several named free-text fields, or None."""
        for field, value in fields.items():
            refusal = self.screen(field, value)
            if refusal is not None:
                return refusal
        return None

    def screen_category(self, category: str) -> Refusal | None:
        """A refusal if `category` is a prohibited category or carries a prohibited label."""
        folded = fold(category)
        for name, what in self.categories.items():
            if folded == fold(name):
                return Refusal(
                    "category",
                    category,
                    Phrase("category {category!r} is prohibited ({what})", category=category, what=what),
                )
        return self.screen("category", category)
