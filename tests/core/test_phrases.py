"""Phrases: English text that services word once and pages show in the reader's language."""

from __future__ import annotations

import json
import pickle

from kuzet.core.errors import PolicyRefusal
from kuzet.core.i18n import Phrase, gettext


def test_a_phrase_is_its_english_text() -> None:
    said = Phrase("entry {entry} is {status}; only a pending or approved entry can be withdrawn", entry=4, status="x")
    assert said == "entry 4 is x; only a pending or approved entry can be withdrawn"
    assert json.dumps({"reason": said}) == json.dumps({"reason": str(said)})  # what the ledger stores
    assert str(PolicyRefusal(said, hint="h")) == f"{said} (h)"


def test_a_phrase_is_shown_in_the_readers_language_with_its_values_translated_too() -> None:
    said = Phrase("alert {alert} is already {status}", alert=7, status=Phrase("confirmed"))
    assert gettext("ru")(said) == "оповещение 7 уже имеет статус «подтверждено»"
    assert gettext("en")(said) == "alert 7 is already confirmed"
    problems = [Phrase("dark"), Phrase("blurred")]
    poor = Phrase(
        "the face in {photo} is too poor for a reliable template: {problems} "
        "(quality {quality:.2f}, at least {least:.2f} needed)",
        photo="a.jpg", problems=problems, quality=0.1234, least=0.3,
    )  # fmt: skip
    assert "dark, blurred (quality 0.12, at least 0.30 needed)" in poor
    assert "темно, размыто (качество 0.12, нужно не меньше 0.30)" in gettext("ru")(poor)
    assert "қараңғы, бұлыңғыр" in gettext("kk")(poor)


def test_a_phrase_survives_pickling_and_a_broken_translation_falls_back_to_english() -> None:
    said = Phrase("no camera named {name!r}", name="gate-2")
    again = pickle.loads(pickle.dumps(said))  # an error from a worker process
    assert isinstance(again, Phrase) and again.values == {"name": "gate-2"} and gettext("kk")(again) != said
    broken = {"no camera named {name!r}": "нет камеры {camera}"}  # a translator renamed the value
    assert said.said(broken) == "no camera named 'gate-2'"
    assert Phrase("plain").said({"plain": "простой"}) == "простой"


def test_a_phrase_names_an_upload_as_the_user_did() -> None:
    said = Phrase("no face found in {photo}", photo="/tmp/x/upload-0")
    renamed = said.renamed("/tmp/x/upload-0", "'me.jpg'")
    assert renamed == "no face found in 'me.jpg'" and gettext("ru")(renamed) == "на 'me.jpg' не найдено лицо"
    assert "/tmp" not in gettext("ru")(renamed)
    assert (Phrase("x") + "y") == "xy" and not isinstance(Phrase("x") + "y", Phrase)  # string operations: plain text
