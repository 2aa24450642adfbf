"""`kuzet eval calibrate` as a user runs it: impostor scores with the data used and its size."""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner

from kuzet.cli.main import app
from kuzet.core.quantize import int16_saturates
from kuzet.governance.calibration import derive_threshold, load_calibration
from kuzet.governance.policy import load_policy

runner = CliRunner()

LAST_DECIMAL = 1.01e-6
"""Scores are stored to 6 decimals: a rebuilt score may round to the neighbouring last digit."""


OTHER_KERNELS = {"dlib-resnet": 0.002, "fusion(dlib-resnet+sface)": 0.008}
"""The shipped scores come from the int8 descriptor on a CPU whose int8 kernels add in 32 bits (VNNI). Where they
would saturate (x86 without VNNI) the descriptor runs fp32 by default, and its scores can only be near the shipped
ones: measured within 0.001 of them (cosines) and 0.008 (fused units, which are scaled up)."""


def tolerance(matcher: str) -> float:
    """How close a rebuilt score must be to a shipped one on this CPU."""
    return OTHER_KERNELS[matcher] if int16_saturates() else LAST_DECIMAL


def unmatched(measured: Sequence[float], shipped: Sequence[float], tolerance: float = LAST_DECIMAL) -> list[float]:
    """Measured scores with no shipped score of their own within `tolerance` (each shipped one serves one measured
    one: the set's pairs must all be among the shipped pairs)."""
    pool = sorted(shipped)
    used = [False] * len(pool)
    missing = []
    for score in sorted(measured):
        i = bisect.bisect_left(pool, score - tolerance)
        while i < len(pool) and used[i]:
            i += 1
        if i < len(pool) and pool[i] <= score + tolerance:
            used[i] = True
        else:
            missing.append(score)
    return missing


def test_calibrate_writes_the_scores_with_the_data_used_and_its_size(faces_dir: Path, tmp_path: Path) -> None:
    labels = faces_dir / "bbt_8id_gray" / "labels.csv"
    out = tmp_path / "calibration.json"
    result = runner.invoke(app, ["eval", "calibrate", "--labels", str(labels), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "700 impostor pairs" in result.output and "needs 2995 impostor pairs" in result.output
    data = json.loads(out.read_text())
    assert data["embedder"] == "dlib-resnet" and data["impostor_pairs"] == 700 and data["genuine_pairs"] == 80
    (measured,) = data["sets"]
    assert measured["name"] == "bbt_8id_gray" and measured["images"] == 40 and measured["impostor_pairs"] == 700
    assert len(measured["sha256"]) == 64 and measured["labels"] == "labels.csv"
    cal = load_calibration(out)
    assert len(cal.impostor_scores) == 700 and list(cal.impostor_scores) == sorted(cal.impostor_scores, reverse=True)
    # the shipped calibration holds the same measurements of this set: it can be rebuilt from the visible data, to
    # the last decimal where the descriptor's int8 kernels are those it was measured with
    shipped = load_calibration(None).impostor_scores
    assert unmatched(cal.impostor_scores, shipped, tolerance("dlib-resnet")) == []

    # 700 pairs can show 1e-2 but not 1e-3: a policy on this data directory says so
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "categories:\n  border-alert:\n    purpose: Find people under an entry ban.\n    max_days: 30\n"
        "    false_match_rate: 0.01\nlegal_basis_types: [entry-ban]\n"
    )
    assert load_policy(policy, calibration=out).threshold("border-alert") == derive_threshold(cal, 0.01).threshold

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("img1,img2,same\namy/amy1.png,amy/amy2.png,1\namy/amy1.png,bernadette/bernadette1.png,0\n")
    only = tmp_path / "only.json"
    root = str(faces_dir / "bbt_8id_gray")
    result = runner.invoke(app, ["eval", "calibrate", "--pairs", str(pairs), "--root", root, "-o", str(only)])
    assert result.exit_code == 0, result.output
    assert json.loads(only.read_text())["impostor_pairs"] == 1
    assert runner.invoke(app, ["eval", "calibrate", "-o", str(only)]).exit_code != 0  # nothing to measure


def test_calibrate_with_face_fusion_measures_the_fused_scores_the_shipped_fusion_calibration_holds(
    faces_dir: Path, tmp_path: Path
) -> None:
    labels = faces_dir / "bbt_8id_gray" / "labels.csv"
    config = tmp_path / "fused.yaml"
    config.write_text("face_fusion:\n  embedder: {type: sface}\n")
    out = tmp_path / "calibration.json"
    result = runner.invoke(app, ["--config", str(config), "eval", "calibrate", "--labels", str(labels), "-o", str(out)])
    assert result.exit_code == 0, result.output
    cal = load_calibration(out)
    assert cal.embedder == "fusion(dlib-resnet+sface)" and len(cal.impostor_scores) == 700
    assert max(cal.genuine_scores) > 1.0  # fused units, not cosines: same pairs above the genuine mean pass 1
    assert sum(cal.genuine_scores) / 80 > 0.8 and abs(sum(cal.impostor_scores) / 700) < 0.3
    # the shipped fusion calibration holds the same measurements of this set
    fused = "fusion(dlib-resnet+sface)"
    assert unmatched(cal.impostor_scores, load_calibration(None, matcher=fused).impostor_scores, tolerance(fused)) == []
