"""Screening of categories and free text against prohibited categories and labels, across languages.

Text is folded before matching: Unicode NFKC, case-folded, accents removed, Latin/Cyrillic look-alike letters and
look-alike digits mapped to one form (so "аctivist" with a Cyrillic "а" or "4ctivist" still match), punctuation
turned into spaces. A label matches a word that starts with it (Russian and Kazakh inflect: "активиста",
"журналистов"); labels of six letters or more also match inside longer words ("photojournalist").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

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

# Latin and Cyrillic letters that look alike, and digits used as letters, folded to one form.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ү": "y",
        "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "i",
    }
)  # fmt: skip


def fold(text: str) -> str:
    """Normalise text for matching (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.translate(_CONFUSABLES)
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a value was refused."""

    field: str
    value: str
    reason: str


def _matches(words: list[str], label_words: list[str]) -> bool:
    n = len(label_words)
    for i in range(len(words) - n + 1):
        ok = True
        for w, lw in zip(words[i : i + n], label_words, strict=True):
            if len(lw) >= 6 and lw in w:
                continue
            if len(lw) >= 4 and w.startswith(lw):
                continue
            if w == lw:
                continue
            ok = False
            break
        if ok:
            return True
    return False


class Screener:
    """Checks text against every prohibited label (built-in plus policy additions)."""

    def __init__(self, extra_labels: dict[str, list[str]] | None = None, extra_categories: list[str] | None = None):
        self._labels: list[tuple[list[str], str, str, str]] = []
        for ground, by_lang in PROHIBITED_LABELS.items():
            for lang, labels in by_lang.items():
                for label in labels:
                    self._labels.append((fold(label).split(), label, lang, ground))
        for lang, labels in (extra_labels or {}).items():
            for label in labels:
                self._labels.append((fold(label).split(), label, lang, "a label the policy prohibits"))
        self.categories = dict(PROHIBITED_CATEGORIES)
        for c in extra_categories or []:
            self.categories.setdefault(c, "a category the policy prohibits")

    def screen(self, field: str, value: str) -> Refusal | None:
        """A refusal if `value` contains a prohibited label, else None."""
        words = fold(value).split()
        if not words:
            return None
        for label_words, label, lang, ground in self._labels:
            if label_words and _matches(words, label_words):
                return Refusal(field, value, f"{field} contains the prohibited label {label!r} ({lang}: {ground})")
        return None

    def screen_category(self, category: str) -> Refusal | None:
        """A refusal if `category` is a prohibited category or carries a prohibited label."""
        folded = fold(category)
        for name, what in self.categories.items():
            if folded == fold(name):
                return Refusal("category", category, f"category {category!r} is prohibited ({what})")
        return self.screen("category", category)
