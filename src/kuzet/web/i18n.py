"""The web app in Kazakh, Russian and English: gettext catalogues, the reader's language, dates in their locale.

The catalogues are the `.po` files under `locales/` (read with Babel; nothing to compile). English is the source
language. The language is the `kuzet_lang` cookie (set by the switcher in the header), else the best match of the
browser's Accept-Language, else English. `tests/web/test_i18n.py` fails on any string missing from a catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.pofile import read_po
from fastapi import Request

LANGUAGES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
"""Languages of the web app, each named in itself (as the switcher shows them)."""
DEFAULT = "en"
COOKIE = "kuzet_lang"
LOCALES = Path(__file__).resolve().parent / "locales"

Gettext = Callable[[str], str]


def marked(message: str) -> str:
    """Mark `message` for the catalogues; it is translated where it is shown."""
    return message


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Msgid -> translation of a language's catalogue (empty for English, the source language)."""
    if lang == DEFAULT:
        return {}
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        po = read_po(f, locale=lang)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def gettext(lang: str) -> Gettext:
    """The translate function of a language (a message missing from its catalogue stays in English)."""
    table = catalogue(lang if lang in LANGUAGES else DEFAULT)
    return lambda message: table.get(message, message)


def language(request: Request) -> str:
    """The reader's language: the switcher's cookie, else the browser's preference, else English."""
    chosen = request.cookies.get(COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return negotiate(request.headers.get("accept-language", ""))


def negotiate(header: str) -> str:
    """The best of LANGUAGES for an Accept-Language header ("kk-KZ,ru;q=0.8,en;q=0.5" -> "kk")."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and q > 0:
            ranked.append((-q, i, base))
    return min(ranked)[2] if ranked else DEFAULT


def local_time(value: str | datetime, lang: str) -> str:
    """An ISO 8601 UTC time (or a datetime) as a date and time in the reader's locale, in UTC."""
    if isinstance(value, str):
        if not value:
            return ""
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    return format_datetime(moment, format="medium", tzinfo=UTC, locale=Locale.parse(lang)) + " UTC"
