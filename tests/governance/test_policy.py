from __future__ import annotations

from pathlib import Path

import pytest

from kuzet.core.errors import ConfigError
from kuzet.governance.policy import load_policy


def test_default_policy_categories() -> None:
    policy = load_policy(None)
    assert set(policy.model.categories) == {"wanted-person", "missing-person", "border-alert", "stolen-vehicle"}
    assert policy.category("wanted-person") is not None
    wanted = policy.category("wanted-person")
    assert wanted is not None and wanted.required_reviews == 2


def test_policy_may_narrow_but_never_allow_a_prohibited_category(tmp_path: Path) -> None:
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(
        "categories:\n  missing-person:\n    purpose: Find missing people.\n    max_days: 30\n    required_reviews: 1\n"
        "legal_basis_types: [missing-person-report]\n"
    )
    policy = load_policy(narrow)
    assert list(policy.model.categories) == ["missing-person"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "categories:\n  political-opinion:\n    purpose: Watch critics.\n    max_days: 30\n"
        "legal_basis_types: [court-order]\n"
    )
    with pytest.raises(ConfigError, match="prohibited"):
        load_policy(bad)
    sneaky = tmp_path / "sneaky.yaml"
    sneaky.write_text(
        "categories:\n  public-order:\n    purpose: Track activists and bloggers.\n    max_days: 30\n"
        "legal_basis_types: [court-order]\n"
    )
    with pytest.raises(ConfigError, match="activist"):
        load_policy(sneaky)


def test_policy_errors_are_explained(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("categories:\n  wanted-person:\n    purpose: x\n    max_days: 99999\nlegal_basis_types: []\n")
    with pytest.raises(ConfigError) as info:
        load_policy(p)
    assert "max_days" in info.value.message and "legal_basis_types" in info.value.message


def test_a_default_enrolment_longer_than_the_maximum_is_refused(tmp_path: Path) -> None:
    """Such a policy loaded fine, and then every enrolment that named no expiry was refused."""
    base = "categories:\n  missing-person:\n    purpose: Find missing people.\n    max_days: 30\n"
    base += "legal_basis_types: [missing-person-report]\n"
    p = tmp_path / "p.yaml"
    p.write_text(base + "enrolment:\n  max_days: 730\n  default_days: 1000\n")
    with pytest.raises(ConfigError, match="default_days") as info:
        load_policy(p)
    assert "max_days" in info.value.message
    p.write_text(base + "enrolment:\n  max_days: 730\n  default_days: 730\n")
    assert load_policy(p).model.enrolment.default_days == 730
    p.write_text(base + "version: 99\n")
    with pytest.raises(ConfigError, match="version"):
        load_policy(p)


def test_leaving_a_language_out_of_the_policy_cannot_switch_its_built_in_labels_off(tmp_path: Path) -> None:
    """`languages` names what the policy's own labels are written in: an insider who lists English only still has
    every Russian and Kazakh built-in label screened, and labels in an unlisted language are refused."""
    base = "categories:\n  missing-person:\n    purpose: Find missing people.\n    max_days: 30\n"
    base += "legal_basis_types: [missing-person-report]\n"
    p = tmp_path / "p.yaml"
    p.write_text(base + "languages: [en]\n")
    screener = load_policy(p).screener
    for text in ("гражданский активист", "белсенді блогер", "civil activist"):
        assert screener.screen_all({"note": text}) is not None, text
    p.write_text(base + "languages: [en]\nprohibited_labels: {de: [aktivist]}\n")
    with pytest.raises(ConfigError, match="de, which languages") as info:
        load_policy(p)
    assert "add the language to languages" in info.value.message
    p.write_text(base + "languages: [en, de]\nprohibited_labels: {de: [regimegegner]}\n")
    assert load_policy(p).screener.screen_all({"note": "ein Regimegegner"}) is not None
    p.write_text(base + "languages: [English]\n")
    with pytest.raises(ConfigError, match="languages"):
        load_policy(p)
