"""Kazakh, Russian and English: the languages people read kuzet in, and the catalogues that translate its text.

The catalogues are the `.po` files under `kuzet/web/locales/` (read with Babel; nothing to compile), beside the web
app most of their messages come from; the transparency report's downloads and the API use them too, which is why
they are read here, below every layer that shows text. English is the source language.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Literal

from kuzet.core.errors import InputError

LANGUAGES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
"""Languages of the web app and the report, each named in itself (as the switcher shows them)."""
Language = Literal["kk", "ru", "en"]
"""A code of LANGUAGES, for a parameter that takes one."""
DEFAULT: Language = "en"
LOCALES = Path(__file__).resolve().parents[1] / "web" / "locales"

Gettext = Callable[[str], str]


def marked(message: str) -> str:
    """Mark `message` for the catalogues; it is translated where it is shown."""
    return message


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Msgid -> translation of a language's catalogue (empty for English, the source language)."""
    from babel.messages.pofile import read_po

    if lang == DEFAULT:
        return {}
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        po = read_po(f, locale=lang)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def gettext(lang: str) -> Gettext:
    """The translate function of a language (a message missing from its catalogue stays in English)."""
    table = catalogue(lang if lang in LANGUAGES else DEFAULT)
    return lambda message: table.get(message, message)


def checked(lang: str) -> str:
    """`lang` if it is one of LANGUAGES; an input error saying which are, otherwise."""
    if lang not in LANGUAGES:
        raise InputError(f"no language {lang!r}", hint=f"use one of {', '.join(LANGUAGES)}")
    return lang
