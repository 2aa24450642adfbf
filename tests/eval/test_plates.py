from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuzet.analytics.plates import FORMATS, char_errors, normalise, plate_formats, vote
from kuzet.cli.main import app
from kuzet.core.errors import InputError
from kuzet.eval.plates import read_labels

BASELINE = Path(__file__).resolve().parents[2] / "baselines" / "plates.json"
NOMEROFF_BASELINE = Path(__file__).resolve().parents[2] / "baselines" / "plates_nomeroff.json"
runner = CliRunner()


def test_plate_reading_holds_committed_baseline(data_root: Path, tmp_path: Path) -> None:
    """`kuzet eval plates` on the US and Brazil sets, as a user runs it; figures may not drop below the baseline."""
    baseline = json.loads(BASELINE.read_text())
    out = tmp_path / "plates.json"
    plates = data_root / "plates"
    result = runner.invoke(
        app, ["eval", "plates", "--labels", str(plates / "labels.csv"), "--root", str(plates), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report) >= {"n", "detected", "exact", "cer", "per_region", "ms_per_image"}
    assert report["n"] == baseline["n"]
    assert report["exact"] >= baseline["exact"] - 0.01
    assert report["detected"] >= baseline["detected"] - 0.01
    assert report["cer"] <= baseline["cer"] + 0.01
    for region, figures in baseline["per_region"].items():
        assert report["per_region"][region]["exact"] >= figures["exact"] - 0.02
    assert len(report["images"]) == report["n"]
    first = report["images"][0]
    assert first["exact"] == (first["read"] == first["label"])


def test_plate_reading_of_the_region_holds_committed_baseline(data_root: Path, tmp_path: Path) -> None:
    """`kuzet eval plates` on the nomeroff set (Ukraine, Europe, Russia, Kazakhstan, Belarus; one- to three-line)."""
    baseline = json.loads(NOMEROFF_BASELINE.read_text())
    out = tmp_path / "nomeroff.json"
    root = data_root / "plates" / "nomeroff"
    result = runner.invoke(
        app, ["eval", "plates", "--labels", str(root / "labels.csv"), "--root", str(root), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["n"] == baseline["n"]
    assert report["exact"] >= baseline["exact"] - 0.01
    assert report["exact"] >= 0.85
    assert report["cer"] <= baseline["cer"] + 0.01
    assert report["per_region"]["ua"]["exact"] >= baseline["per_region"]["ua"]["exact"] - 0.02
    two_line = [im for im in report["images"] if im["label"] in {"10922BX", "41353AE", "30217BI", "6808XO"}]
    assert len(two_line) == 4
    assert all(im["exact"] for im in two_line), two_line


def test_formats_fix_confusions_by_position() -> None:
    kz, br = FORMATS["kz"], FORMATS["br"]
    assert kz.fit("12XABC02") is None  # "X" cannot be a digit
    assert kz.fit("I23ABCO2") == ("123ABC02", 2)
    assert kz.fit("123A8C02") == ("123ABC02", 1)
    assert br.fit("ABC1D23") == ("ABC1D23", 0)  # Mercosur
    assert br.fit("A8C1234") == ("ABC1234", 1)
    assert FORMATS["us"].fit("CH0P8Y") == ("CH0P8Y", 0)
    assert FORMATS["us"].fit("CHOP8Y") == ("CH0P8Y", 0)  # US plates do not tell O from 0
    assert FORMATS["us"].fit("ABCDEFGHIJ") is None


def test_normalise_prefers_plates_to_words_and_timestamps() -> None:
    us = plate_formats(["us"])
    plate = normalise("7ABC123", 0.9, us)
    word = normalise("ARIZONA", 0.95, us)
    stamp = normalise("20140617", 0.99, us)
    assert plate is not None
    assert word is not None
    assert stamp is not None
    assert plate.score > word.score
    assert plate.score > stamp.score
    assert normalise("12-ab c", 0.9, plate_formats(["kz"])) is None
    with pytest.raises(InputError, match="unknown plate region"):
        plate_formats(["mars"])


def test_vote_takes_the_best_supported_character_per_position() -> None:
    reads = [
        normalise(t, c, plate_formats(["kz"])) for t, c in [("123ABC02", 0.6), ("123A8C02", 0.7), ("I23ABC02", 0.9)]
    ]
    result = vote([r for r in reads if r is not None])
    assert result is not None
    assert result.text == "123ABC02"
    assert result.region == "kz"
    assert vote([]) is None


def test_character_errors_are_edit_distance() -> None:
    assert char_errors("ABC123", "ABC123") == 0
    assert char_errors("ABC12", "ABC123") == 1
    assert char_errors("XBC1234", "ABC123") == 2
    assert char_errors("", "ABC") == 3


def test_bad_labels_are_refused_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("file,region,x,y,w,h,plate\na.jpg,us,1,2,three,4,ABC123\n")
    with pytest.raises(InputError, match=r"labels.csv:2"):
        read_labels(bad)
    bad.write_text("file,plate\na.jpg,ABC\n")
    with pytest.raises(InputError, match="missing columns"):
        read_labels(bad)
    result = runner.invoke(app, ["eval", "plates", "--labels", str(bad), "--root", str(tmp_path)])
    assert result.exit_code == 2
