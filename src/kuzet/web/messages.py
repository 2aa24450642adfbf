"""The web app's messages: every string marked for translation, and the catalogues brought up to date.

`python -m kuzet.web.messages` (`make messages`) adds new messages to each language's `.po` file (untranslated,
for a translator) and drops messages no longer used; `tests/web/test_i18n.py` fails while any message lacks a
translation.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po
from jinja2.ext import babel_extract

from kuzet.web.i18n import DEFAULT, LANGUAGES, LOCALES

WEB = Path(__file__).resolve().parent
PYTHON_SOURCES = (WEB / "chrome.py", WEB / "views.py", WEB.parent / "governance" / "report.py")
"""Python modules whose `_()` and `marked()` strings are shown in the web app or the transparency report."""
KEYWORDS: dict[str, tuple[int, ...] | None] = {"_": None, "marked": None, "gettext": None}
PERMISSIONS = (WEB.parent / "services" / "permissions.py", {"Permission": (2,)})
"""The permission table: each `Permission(roles, action)`'s action is shown in a refusal ("may not <action>")."""
PHRASES: dict[str, tuple[int, ...] | None] = {"Phrase": None}
"""Refusals and errors the services word as `Phrase(template, **values)` anywhere in kuzet: shown translated."""


def extract_messages() -> list[tuple[str, str]]:
    """(message, where) of every marked string.

    The templates' `_()`, the Python modules' `_()`/`marked()`, and the templates of every `Phrase(...)` in kuzet.
    """
    found: dict[str, str] = {}
    for path in sorted((WEB / "templates").glob("*.html")):
        with path.open("rb") as f:
            for line, _, message, _ in babel_extract(f, list(KEYWORDS), [], {"extensions": "jinja2.ext.i18n"}):
                for text in _strings(message):
                    found.setdefault(text, f"{path.name}:{line}")
    phrased = [(p, PHRASES) for p in sorted(WEB.parent.rglob("*.py")) if "Phrase(" in p.read_text(encoding="utf-8")]
    for path, keywords in [(p, KEYWORDS) for p in PYTHON_SOURCES] + [PERMISSIONS] + phrased:
        with path.open("rb") as f:
            for line, message, _, _ in extract("python", f, keywords=keywords):
                for text in _strings(message):
                    found.setdefault(text, f"{path.name}:{line}")
    return sorted(found.items())


def _strings(message: object) -> Iterator[str]:
    if isinstance(message, str):
        if message:
            yield message
    elif isinstance(message, tuple | list):
        yield from (m for m in message if isinstance(m, str) and m)


def update(lang: str) -> tuple[int, int]:
    """Bring a language's catalogue up to date; returns (messages added, messages dropped)."""
    path = LOCALES / lang / "LC_MESSAGES" / "messages.po"
    if path.is_file():
        with path.open("rb") as f:
            old = read_po(f, locale=lang)
    else:
        old = Catalog(locale=lang)
    new = Catalog(locale=lang, project="kuzet", charset="utf-8", fuzzy=False)
    wanted = extract_messages()
    for message, where in wanted:
        before = old.get(message)
        new.add(message, before.string if before is not None else "", locations=[(where.split(":")[0], 0)])
    added = sum(1 for m, _ in wanted if old.get(m) is None)
    dropped = sum(1 for m in old if m.id and new.get(m.id) is None)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, new, width=120, omit_header=False, sort_output=True, include_lineno=False)
    return added, dropped


def main() -> None:
    """Update every catalogue and say what changed."""
    for lang in LANGUAGES:
        if lang != DEFAULT:
            added, dropped = update(lang)
            sys.stdout.write(f"{lang}: {added} new message(s) to translate, {dropped} dropped\n")


if __name__ == "__main__":
    main()
