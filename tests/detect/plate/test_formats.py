"""National plate formats: position classes, alphabets, emblems, country bands, line order; joining regions."""

from __future__ import annotations

import numpy as np
import pytest

from kuzet.detect.plate.formats import FORMATS, GROUPS, expand, known_region, normalise, plate_formats
from kuzet.detect.plate.reader import PlateCandidate, TextRead, choose_plate, same_line_groups, stacked_lines


def test_patterns_expand_to_every_layout() -> None:
    assert expand("C{1,2}D{2}") == ("CDD", "CCDD")
    assert expand("LL/DDDD/LL") == ("LL/DDDD/LL",)
    assert len(expand("C{1,3}_C{1,2}D{1,4}")) == 24


@pytest.mark.parametrize(
    ("region", "read", "plate", "changes"),
    [
        ("ua", "A01306CH", "AO1306CH", 1),  # a letter where the format has letters
        ("ua", "BE7425C8", "BE7425CB", 1),
        ("ua", "AI1382HB", "AI1382HB", 0),  # I is a Ukrainian letter
        ("ua", "A11382HB", "AI1382HB", 1),
        ("ua", "1O922BX", "10922BX", 1),  # 1995 series: digits first
        ("ru", "XЗ71HK96".replace("З", "3"), "X371HK96", 0),
        ("ru", "X37IHK196", "X371HK196", 1),  # three-digit region code
        ("ru", "0123AB77", "O123AB77", 1),
        ("kz", "I23ABCO2", "123ABC02", 2),
        ("by", "29I4KC7", "2914KC7", 1),
        ("nl", "1O5PL2", "105PL2", 1),  # Dutch letters are consonants: O is 0
        ("pl", "WA1O34O", "WA10340", 2),  # Polish serials leave out O: 0
        ("it", "AB123C0", "AB123CD", 1),  # Italian plates have no O: a 0 at a letter is D
        ("fr", "AB-123-CD", "AB123CD", 0),
        ("es", "1234BCO", "1234BCD", 1),  # Spanish series are consonants
        ("gb", "AB12CDE", "AB12CDE", 0),
        ("gb", "AB1ZCDE", "AB12CDE", 1),
        ("cz", "1A2345G", "1A23456", 1),
        ("be", "1ABC123", "1ABC123", 0),
        ("lt", "ABC123", "ABC123", 0),
        ("ee", "123ABC", "123ABC", 0),
        ("lv", "AB1234", "AB1234", 0),
    ],
)
def test_layouts_fix_confusions_by_position(region: str, read: str, plate: str, changes: int) -> None:
    assert FORMATS[region].fit(read) == (plate, changes)


def test_letters_outside_a_regions_alphabet_do_not_fit() -> None:
    assert FORMATS["ru"].fit("Z123BC77") is None  # Z is no Cyrillic look-alike
    assert FORMATS["ua"].fit("AA1234YY") == ("AA1234XX", 2)  # no Y on Ukrainian plates: the look-alike X
    assert FORMATS["ua"].fit("AA1234SS") is None
    assert FORMATS["nl"].fit("AE12CD") is None  # no vowels in Dutch sidecodes


def test_emblems_and_country_bands_are_dropped() -> None:
    assert FORMATS["sk"].fit("BA8123XY") == ("BA123XY", 1)  # coat of arms read as 8
    assert FORMATS["sk"].fit("BA123XY") == ("BA123XY", 0)
    assert FORMATS["de"].fit("B3AB1234") == ("BAB1234", 1)  # the seal read as 3
    assert FORMATS["hr"].fit("ZG01234AB") == ("ZG1234AB", 1)
    assert FORMATS["ua"].fit("UAAA0013BM") == ("AA0013BM", 1)
    assert FORMATS["kz"].fit("KZ123ABC02") == ("123ABC02", 1)
    assert FORMATS["ru"].fit("X371HK96RUS") == ("X371HK96", 1)
    assert FORMATS["ua"].fit("UA/BE/0886/AA") == ("BE0886AA", 1)
    assert FORMATS["sk"].fit("BA88123XY") is None  # one character at the emblem, not two


def test_lines_join_in_the_formats_order() -> None:
    ua = FORMATS["ua"]
    assert ua.fit("6808/XO") == ("6808XO", 0)
    assert ua.fit("BE/0886/AA") == ("BE0886AA", 0)
    assert ua.fit("10922/BX") == ("10922BX", 0)
    assert ua.fit("XO/6808") is None  # letters on top: no Ukrainian layout
    assert ua.fit("6808XO") is None  # a two-line layout is not a one-line one
    assert FORMATS["hr"].fit("DU8/912JT") == ("DU912JT", 1)
    assert FORMATS["ru"].fit("1234/AB77") == ("1234AB77", 0)
    assert FORMATS["us"].fit("ABC/123") is None  # a catch-all knows no line order


def test_groups_and_catch_alls() -> None:
    assert known_region("EU")
    assert known_region("uk")
    assert not known_region("mars")
    europe = plate_formats(["eu"])
    assert {f.region for f in europe} == set(GROUPS["eu"])
    assert plate_formats(["uk"]) == [FORMATS["gb"]]
    read = normalise("ZG 1234-AB", 0.9, europe)
    assert read is not None
    assert read.text == "ZG1234AB"
    assert read.region in {"at", "hr"}  # both layouts fit
    odd = normalise("K3K3K3K", 0.9, europe)  # no national layout: the catch-all, at half weight
    assert odd is not None
    assert odd.region == "eu-other"
    assert odd.score == pytest.approx(0.9 * 0.5)


def _box(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([x1, y1, x2, y2], np.float32)


def test_stacked_lines_are_found_top_first() -> None:
    boxes = [_box(10, 60, 90, 100), _box(0, 0, 100, 50), _box(200, 0, 300, 50), _box(15, 98, 85, 140)]
    stacks = stacked_lines(boxes)
    assert (1, 0) in stacks
    assert (1, 0, 3) in stacks
    assert all(2 not in s for s in stacks)  # beside, not under
    assert same_line_groups(boxes) == []
    row = [_box(0, 0, 40, 30), _box(55, 2, 200, 31), _box(0, 100, 40, 110)]
    assert same_line_groups(row) == [(0, 1)]


def test_the_whole_plate_beats_a_piece_that_fits_as_well() -> None:
    def cand(box: np.ndarray, text: str, lines: int = 1) -> PlateCandidate:
        return PlateCandidate(box=box, detector_score=0.99, read=TextRead(text, (0.99,) * len(text)), lines=lines)

    pieces = [
        cand(_box(0, 40, 100, 80), "0886/AA", lines=2),
        cand(_box(0, 0, 100, 80), "BE/0886/AA", lines=3),
    ]
    read = choose_plate(pieces, plate_formats(["ua"]))
    assert read is not None
    assert read.plate.text == "BE0886AA"
    assert read.raw == "BE/0886/AA"
