from __future__ import annotations

import pytest

from kuzet.governance.screening import Screener, fold

screener = Screener()


@pytest.mark.parametrize(
    "text",
    [
        "civil activist",
        "CIVIL ACTIVIST",
        "Journalist",
        "well-known blogger",
        "protester at the square",
        "member of the opposition",
        "гражданский активист",
        "известный журналистка",
        "блогера",
        "оппозиционер",
        "азаматтық белсенді",
        "блогерлер",
        "саяси",
        "аctivist",  # Cyrillic "а"
        "4ctivist",
        "j0urnalist",
        "photojournalist",
        "trade-union leader",
        "LGBT",
    ],
)
def test_prohibited_labels_are_found_in_any_form(text: str) -> None:
    refusal = screener.screen("note", text)
    assert refusal is not None
    assert "prohibited label" in refusal.reason


@pytest.mark.parametrize(
    "text",
    ["Ivanov Ivan", "armed robbery, case 2-345/2026", "Almaty city court", "reported missing by her family", "Horace"],
)
def test_ordinary_text_passes(text: str) -> None:
    assert screener.screen("note", text) is None


@pytest.mark.parametrize(
    "category",
    [
        "political-opinion",
        "religion-or-belief",
        "ethnicity-or-race",
        "sexual-orientation",
        "health",
        "trade-union-membership",
    ],
)
def test_prohibited_categories(category: str) -> None:
    refusal = screener.screen_category(category)
    assert refusal is not None and "prohibited" in refusal.reason


def test_policy_can_add_labels_but_builtins_stay() -> None:
    extra = Screener({"en": ["influencer"]}, ["loitering"])
    assert extra.screen("note", "influencer") is not None
    assert extra.screen("note", "activist") is not None
    assert extra.screen_category("loitering") is not None


def test_fold_maps_lookalikes_and_punctuation() -> None:
    assert fold("Ａctivist") == fold("activist")  # full-width A
    assert fold("activ1st") == "activist"
    assert fold("civil-activist") == "civil activist"
