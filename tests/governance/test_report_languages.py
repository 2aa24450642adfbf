"""The transparency report's downloads in Kazakh, Russian and English: the words translated, every letter shown."""

from __future__ import annotations

import io
import warnings
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from kuzet.core.errors import InputError
from kuzet.governance.policy import load_policy
from kuzet.governance.report import (
    ReportInputs,
    TransparencyReport,
    build_report,
    render_pdf,
    report_bytes,
    write_report,
)
from tests.support.pdftext import pdf_objects, pdf_text

KAZAKH_LETTERS = set("әғқңөұүі")
"""The letters of Kazakh that Russian lacks, less һ (no word of the report has it)."""
PEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"


@pytest.fixture(scope="module")
def rep() -> TransparencyReport:
    inputs = ReportInputs(
        runs=[("gate-1", 1200, 7, 3)],
        entries=[("wanted-person", "court-order", "approved")],
        alert_statuses=["confirmed", "rejected"],
        ledger=[("watchlist.request_refused", "'blogger' is a prohibited label", "{}"), ("subject.search", "", "{}")],
        checkpoint=None,
    )
    return build_report(
        inputs, load_policy(None), start=date(2026, 1, 1), end=date(2026, 1, 31),
        now=datetime(2026, 2, 1, tzinfo=UTC), public_key_pem=PEM,
    )  # fmt: skip


def _pdf(rep: TransparencyReport, lang: str) -> tuple[bytes, list[str]]:
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_pdf(rep, buffer, lang)
    return buffer.getvalue(), [str(w.message) for w in caught]


def test_the_pdf_in_kazakh_is_kazakh_text_in_a_font_that_has_every_letter(rep: TransparencyReport) -> None:
    data, caught = _pdf(rep, "kk")
    assert data.startswith(b"%PDF") and not caught  # no "Glyph ... missing from font" (or any other) warning
    assert b"DejaVuSans" in data  # the font matplotlib ships, with every Kazakh letter
    text = pdf_text(data)
    assert "Ашықтық есебі" in text  # the title
    assert "Ескертулер және адамның тексеруі" in text  # a heading, and a chart's title
    assert "тыйым салынған белгі" in text  # a refusal's kind: a chart's label
    assert "іске қосулар 1, кадрлар 1200" in text  # table headers as labels
    assert set(text) >= KAZAKH_LETTERS
    assert "Transparency report" not in text and "Alerts" not in text


def test_the_pdf_in_russian_and_english(rep: TransparencyReport) -> None:
    russian = pdf_text(_pdf(rep, "ru")[0])
    assert "Отчёт о прозрачности" in russian and "запрещённая метка" in russian
    english, caught = _pdf(rep, "en")
    assert not caught
    text = pdf_text(english)
    assert "Transparency report" in text and "prohibited label" in text and "runs 1, frames 1200" in text
    assert "Ашықтық" not in text


def test_html_downloads_carry_their_language_and_unknown_languages_are_refused(
    rep: TransparencyReport, tmp_path: Path
) -> None:
    content, media = report_bytes(rep, "html", "ru")
    page = content.decode()
    assert media.startswith("text/html")
    assert '<html lang="ru">' in page
    assert "<title>Отчёт о прозрачности kuzet: 2026-01-01 – 2026-01-31</title>" in page
    assert "<th>запуски</th>" in page  # the cameras table's headers
    write_report(rep, tmp_path / "report.html", "kk")
    assert "<h1>Ашықтық есебі</h1>" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<title>kuzet transparency report 2026-01-01 to 2026-01-31</title>" in report_bytes(rep, "html")[0].decode()
    for bad in ("de", "KK", ""):
        with pytest.raises(InputError, match="no language") as refused:
            report_bytes(rep, "pdf", bad)
        assert refused.value.hint == "use one of kk, ru, en"


def test_the_report_lists_each_purposes_declared_rate_and_derived_threshold(rep: TransparencyReport) -> None:
    wanted = next(p for p in rep.purposes if p["category"] == "wanted-person")
    plates = next(p for p in rep.purposes if p["category"] == "stolen-vehicle")
    assert wanted["declared_false_match_rate"] == 0.001 and wanted["threshold"] == 0.9284
    assert plates["declared_false_match_rate"] is None and plates["threshold"] == 1.0
    assert rep.calibration["impostor_pairs"] == 6890 and rep.calibration["embedder"] == "dlib-resnet"
    page = report_bytes(rep, "html", "en")[0].decode()
    assert "<th>declared false-match rate</th>" in page and "<td>0.001</td><td>0.9284</td>" in page
    assert "<td>–</td><td>1.0</td>" in page  # no rate: an explicit threshold
    assert "6890 comparisons of different people" in page and "lfw_original_10id (100 images)" in page
    russian = pdf_text(_pdf(rep, "ru")[0])
    assert "заявленная доля ложных совпадений 0.001" in " ".join(russian.split())


def test_the_pdf_reader_reads_a_stream_whose_data_ends_in_a_carriage_return() -> None:
    """One compressed stream in 256 ends in byte 13; the reader once cut it off as the end of line before `endstream`
    (CI read a report in Kazakh that way and failed)."""
    payload = next(p for i in range(10_000) if zlib.compress(p := b"BT (%d) Tj ET" % i).endswith(b"\r"))
    data = b"%PDF-1.4\n1 0 obj\n<< /Length 9 >>\nstream\n" + zlib.compress(payload) + b"\nendstream\nendobj\n"
    assert pdf_objects(data)[1][1] == payload
