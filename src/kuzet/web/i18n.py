"""The web app in Kazakh, Russian and English: gettext catalogues, the reader's language, dates in their locale.

The catalogues are the `.po` files under `locales/` (read with Babel; nothing to compile; `kuzet.core.i18n` reads
them, so that the API and the report's downloads translate too). English is the source language. The language is
the `kuzet_lang` cookie (set by the switcher in the header), else the best match of the browser's Accept-Language,
else English. `tests/web/test_i18n.py` fails on any string missing from a catalogue.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel import Locale
from babel.dates import format_datetime
from fastapi import Request

from kuzet.core.i18n import DEFAULT, LANGUAGES, LOCALES, Gettext, catalogue, gettext, marked

__all__ = [
    "COOKIE",
    "DEFAULT",
    "LANGUAGES",
    "LOCALES",
    "Gettext",
    "catalogue",
    "gettext",
    "language",
    "local_time",
    "marked",
    "negotiate",
]

COOKIE = "kuzet_lang"


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
