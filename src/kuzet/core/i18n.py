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


class Phrase(str):
    """English text that remembers its template and values, so that it can be shown in the reader's language.

    Services word refusals and errors once, in English, as `Phrase("plate {plate!r} is not 2-10 letters", plate=p)`:
    the value is the English text (what the ledger, logs, the CLI and the API record and show), and a page translates
    it with `gettext(lang)(text)`: the catalogue's template, filled with the same values (a value that is itself a
    Phrase is translated too; a list of values is joined with commas). `python -m kuzet.web.messages` extracts every
    `Phrase("...")` template from kuzet's sources into the catalogues. A Phrase that passes through string operations
    (`+`, `.strip()`, f-strings) becomes a plain string again and is shown in English; that is how it degrades.
    """

    template: str
    values: dict[str, object]

    def __new__(cls, template: str, /, **values: object) -> Phrase:  # noqa: D102 (the class says it)
        shown = {k: _listed(v, lambda x: x) for k, v in values.items()}
        said = super().__new__(cls, template.format(**shown) if values else template)
        said.template = template
        said.values = values
        return said

    def __reduce__(self) -> tuple[object, ...]:  # pickles (a worker's error crossing processes) keep the template
        return _phrase, (self.template, self.values)

    def said(self, table: dict[str, str]) -> str:
        """The text in a catalogue's language (`table`: msgid -> translation); English where the catalogue lacks it."""
        if not self.values:
            return table.get(self.template, self.template)
        values = {
            k: _listed(v, lambda x: x.said(table) if isinstance(x, Phrase) else x) for k, v in self.values.items()
        }
        try:
            return table.get(self.template, self.template).format(**values)
        except (KeyError, IndexError, ValueError):  # a translation naming a value the template lacks: say it in English
            return self.template.format(**values)

    def renamed(self, old: str, new: str) -> Phrase:
        """The same phrase with `old` replaced by `new` in its values (a server path by the name the user gave)."""
        values = {k: str(v).replace(old, new) if old in str(v) else v for k, v in self.values.items()}
        return Phrase(self.template, **values) if self.values else Phrase(self.template.replace(old, new))


def _listed(value: object, show: Callable[[object], object]) -> object:
    """A value as a phrase shows it: each item of a list or tuple shown and joined with commas (a list of problems)."""
    if isinstance(value, list | tuple):
        return ", ".join(str(show(v)) for v in value)
    return show(value)


def _phrase(template: str, values: dict[str, object]) -> Phrase:
    return Phrase(template, **values)


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
    return lambda message: message.said(table) if isinstance(message, Phrase) else table.get(message, message)


def checked(lang: str) -> str:
    """`lang` if it is one of LANGUAGES; an input error saying which are, otherwise."""
    if lang not in LANGUAGES:
        raise InputError(f"no language {lang!r}", hint=f"use one of {', '.join(LANGUAGES)}")
    return lang
