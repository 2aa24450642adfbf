"""Thresholds from a declared false-match rate: derived from measured impostor scores, refused when unsupported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kuzet.core.errors import ConfigError
from kuzet.governance.calibration import (
    CalibrationSet,
    allowed_exceedances,
    derive_threshold,
    load_calibration,
    make_calibration,
    needed_pairs,
    parse_calibration,
)
from kuzet.governance.policy import DEFAULT_THRESHOLD, load_policy

CATEGORY = "categories:\n  wanted-person:\n    purpose: Find a person sought by a court.\n    max_days: 30\n"
BASES = "legal_basis_types: [court-order]\n"


def _calibration(impostor: list[float], genuine: list[float] | None = None) -> str:
    made = make_calibration(
        embedder="dlib-resnet",
        detector="centerface",
        sets=[CalibrationSet("made-up", "labels.csv", "0" * 64, 10, 0, len(impostor), len(genuine or []))],
        impostor=impostor,
        genuine=genuine or [],
    )
    return made.to_text()


def test_derived_threshold_from_a_known_score_list() -> None:
    # 5000 impostors evenly spread over [0, 0.8), and 10 high ones: 0.90, 0.91, ..., 0.99
    impostor = [0.8 * i / 5000 for i in range(5000)] + [0.90 + i / 100 for i in range(10)]
    genuine = [0.95, 0.97, 0.995, 0.999]
    cal = parse_calibration(_calibration(impostor, genuine), source="test")
    assert cal.impostor_pairs == 5010
    # at 1e-3, with 95% confidence over 5010 pairs, at most one impostor may reach the threshold
    assert allowed_exceedances(5010, 1e-3) == 1
    d = derive_threshold(cal, 1e-3)
    assert d.threshold == pytest.approx(0.98 + 1e-6)  # one step above the second highest impostor
    assert d.impostors_at_or_above == 1 and d.genuine_accepted == 0.5
    # a looser rate lets more through, hence a lower threshold
    loose = derive_threshold(cal, 1e-2)
    assert loose.threshold < 0.9 and loose.impostors_at_or_above <= 0.01 * 5010
    # the bound is no looser than the plain share: it never allows more than rate * n
    for n, rate in ((4010, 1e-2), (6890, 1e-3), (100_000, 1e-4)):
        k = allowed_exceedances(n, rate)
        assert k is not None and k <= rate * n


def test_a_rate_the_data_cannot_support_is_refused_naming_the_category_and_the_pairs_needed(tmp_path: Path) -> None:
    assert needed_pairs(1e-3) == 2995 and needed_pairs(1e-2) == 299  # about 3 / rate
    cal_file = tmp_path / "calibration.json"
    cal_file.write_text(_calibration([0.5] * 1000))
    policy = tmp_path / "policy.yaml"
    policy.write_text(CATEGORY + "    false_match_rate: 0.001\n" + BASES)
    with pytest.raises(ConfigError) as info:
        load_policy(policy, calibration=cal_file)
    assert "'wanted-person'" in info.value.message and "1000 impostor pairs" in info.value.message
    assert "2995" in info.value.message and "kuzet eval calibrate" in info.value.hint
    policy.write_text(CATEGORY + "    false_match_rate: 0.01\n" + BASES)
    assert load_policy(policy, calibration=cal_file).threshold("wanted-person") == pytest.approx(0.5 + 1e-6)


def test_a_category_may_give_a_rate_or_a_threshold_but_not_both(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(CATEGORY + "    false_match_rate: 0.001\n    threshold: 0.9\n" + BASES)
    with pytest.raises(ConfigError, match="choose one"):
        load_policy(policy)
    policy.write_text(CATEGORY + "    kind: plate\n    false_match_rate: 0.001\n" + BASES)
    with pytest.raises(ConfigError, match="plates match their text exactly"):
        load_policy(policy)
    policy.write_text(CATEGORY + "    threshold: 0.9\n" + BASES)
    explicit = load_policy(policy)
    assert explicit.threshold("wanted-person") == 0.9 and explicit.false_match_rate("wanted-person") is None
    assert explicit.calibration is None  # nothing declared, nothing measured needed
    policy.write_text(CATEGORY + BASES)
    assert load_policy(policy).threshold("wanted-person") == DEFAULT_THRESHOLD


def test_default_policy_declares_rates_the_shipped_calibration_supports() -> None:
    cal = load_calibration(None)
    assert cal.embedder == "dlib-resnet" and cal.impostor_pairs >= needed_pairs(1e-3)
    assert {s.name for s in cal.sets} == {"deepface_13id", "lfw_original_10id", "bbt_8id_gray"}
    assert cal.impostor_pairs == sum(s.impostor_pairs for s in cal.sets)
    policy = load_policy(None)
    for name in ("wanted-person", "missing-person", "border-alert"):
        assert policy.false_match_rate(name) == 0.001
        assert policy.threshold(name) == derive_threshold(cal, 0.001).threshold
    assert policy.threshold("stolen-vehicle") == 1.0 and policy.false_match_rate("stolen-vehicle") is None
    summary = policy.summary()
    assert summary["wanted-person.false_match_rate"] == 0.001 and summary["calibration.impostor_pairs"] == 6890
    policy.check_embedder("dlib-resnet")
    with pytest.raises(ConfigError, match="measured with the dlib-resnet embedder"):
        policy.check_embedder("sface")


def test_a_data_directory_calibration_changes_the_policy_digest(tmp_path: Path) -> None:
    own = tmp_path / "calibration.json"
    data = json.loads(load_calibration(None).to_text())
    data["impostor_scores"] = sorted(data["impostor_scores"] + [0.99], reverse=True)
    own.write_text(json.dumps(data))
    built_in, mine = load_policy(None), load_policy(None, calibration=own)
    assert mine.threshold("wanted-person") > built_in.threshold("wanted-person")
    assert mine.digest != built_in.digest  # a new calibration is a new policy in force, ledgered as such
    own.write_text('{"format": 1, "embedder": "x"}')
    with pytest.raises(ConfigError, match="kuzet eval calibrate"):
        load_policy(None, calibration=own)
