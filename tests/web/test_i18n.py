"""The web app in Kazakh, Russian and English: complete catalogues, the browser's language, the switcher."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from kuzet.config.models import KuzetConfig
from kuzet.services.container import Services
from kuzet.web.i18n import LANGUAGES, LOCALES, negotiate
from kuzet.web.messages import extract_messages
from tests.conftest import PASSWORD
from tests.support.pdftext import pdf_text
from tests.web.conftest import role_site

PLACEHOLDER = re.compile(r"%\(\w+\)s|\{[^{}]*\}")
"""A value a message is filled with: `%(name)s` (templates, views) or `{name!r}` (the services' phrases)."""


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_every_string_is_translated(lang: str) -> None:
    wanted = {message for message, _ in extract_messages()}
    assert len(wanted) > 200  # the templates, the menu, the states, the views' messages and the report
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        po = read_po(f, locale=lang)
    have = {str(m.id): m for m in po if m.id}
    missing = sorted(wanted - set(have))
    assert not missing, f"{lang}: not in the catalogue (run `make messages`, then translate): {missing[:10]}"
    untranslated = sorted(m for m in wanted if not have[m].string or have[m].fuzzy)
    assert not untranslated, f"{lang}: untranslated or fuzzy: {untranslated[:10]}"
    for m in wanted:
        assert sorted(PLACEHOLDER.findall(str(have[m].string))) == sorted(PLACEHOLDER.findall(m)), (lang, m)
    assert not sorted(set(have) - wanted), f"{lang}: messages no longer used (run `make messages`)"


def test_the_browsers_language_is_negotiated() -> None:
    assert negotiate("kk-KZ,ru;q=0.8,en;q=0.5") == "kk"
    assert negotiate("de-DE,ru;q=0.9,kk;q=0.4") == "ru"
    assert negotiate("en-US,en;q=0.9") == "en"
    assert negotiate("fr, de;q=0.5") == "en"
    assert negotiate("ru;q=0, kk;q=0.1") == "kk"
    assert negotiate("") == "en"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Services, TestClient]]:
    with role_site(tmp_path / "data", KuzetConfig()) as made:
        yield made


@pytest.mark.store
def test_pages_follow_the_browser_and_the_switcher(site: tuple[Services, TestClient]) -> None:
    _, client = site
    kazakh = {"Accept-Language": "kk-KZ,kk;q=0.9,ru;q=0.8"}
    login = client.get("/login", headers=kazakh).text
    assert '<html lang="kk">' in login and "Кіру" in login and "Sign in" not in login
    client.post("/login", data={"name": "auditor", "password": PASSWORD})
    overview = client.get("/", headers=kazakh).text
    assert "Шолу" in overview and "Аудит журналы" in overview and ">Overview<" not in overview
    report = client.get("/report?from=2026-01-01&to=2026-01-31", headers=kazakh).text
    assert "Ашықтық есебі" in report and "Тек жиынтық деректер" in report  # the transparency report in Kazakh

    switched = client.get("/language/ru?next=/events", headers=kazakh)  # the switcher wins over the browser
    assert switched.status_code == 303 and switched.headers["location"] == "/events"
    events = client.get("/events", headers=kazakh).text
    assert '<html lang="ru">' in events and "События" in events and "Событий нет." in events
    for target in ("//evil.example/x", "https://evil.example/", "/\\\\evil.example", "/%09/evil.example"):
        away = client.get(f"/language/kk?next={target}")
        assert away.headers["location"] == "/", target  # never an open redirect
    assert client.get("/language/xx?next=/").status_code == 303
    assert '<html lang="kk">' in client.get("/").text  # an unknown code changed nothing


@pytest.mark.store
def test_flash_messages_and_error_pages_are_translated(site: tuple[Services, TestClient]) -> None:
    _, client = site
    client.cookies.set("kuzet_lang", "ru")
    client.post("/login", data={"name": "operator", "password": PASSWORD})
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "Страницы /no-such-page нет." in missing.text and "Не найдено" in missing.text
    refused = client.get("/audit")
    assert (
        refused.status_code == 403
        and "Нет доступа" in refused.text
        and "Отказ записан в журнал аудита." in refused.text
        and "operator не может читать журнал аудита: нужна роль auditor or admin" in refused.text  # the reason too
        and "may not" not in refused.text
    )
    client.cookies.set("kuzet_lang", "kk")
    assert "operator аудит журналын оқуға құқығы жоқ" in client.get("/audit").text


@pytest.mark.store
def test_service_refusals_and_errors_are_in_the_readers_language(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    client.cookies.set("kuzet_lang", "kk")
    failed = client.post("/login", data={"name": "requester", "password": "not the password"})
    assert "пайдаланушы аты немесе құпиясөз қате" in client.get(failed.headers["location"]).text

    client.cookies.set("kuzet_lang", "ru")
    client.post("/login", data={"name": "requester", "password": PASSWORD})
    form = {
        "list_name": "border", "name": "A. Person", "category": "wanted-person", "legal_basis": "court-order",
        "reference": "2-77/2026", "authority": "Almaty city court", "note": "известный блогер",
        "expires": (svc.ctx.now().date() + timedelta(days=30)).isoformat(), "csrf_token": client.cookies["kuzet_csrf"],
    }  # fmt: skip
    refused = client.get(client.post("/watchlists", data=form).headers["location"]).text
    assert "поле note содержит запрещённую метку" in refused and "contains the prohibited label" not in refused
    beyond = client.get(
        client.post("/watchlists", data={**form, "note": "", "expires": "2099-01-01"}).headers["location"]
    ).text
    assert "превышает максимум в 180 дн. для категории wanted-person" in beyond  # the values filled in
    plate = {**form, "category": "stolen-vehicle", "legal_basis": "stolen-vehicle-report", "note": "", "plate": "!"}
    bad_plate = client.get(client.post("/watchlists", data=plate).headers["location"]).text
    assert "номер &#39;!&#39; — не 2–10 букв и цифр" in bad_plate

    invalid = client.get("/events/not-a-number")  # a page's own validation error, worded for the reader
    assert invalid.status_code == 422 and "значения запроса недопустимы: path.event_id" in invalid.text

    auditor = svc.users.login("auditor", PASSWORD)[0]
    said = [e.justification for e in svc.audit.log(auditor, action="watchlist.refused")]
    assert any("note contains the prohibited label" in s for s in said), said  # the ledger keeps the English words
    api = client.post("/api/watchlists", data={k: v for k, v in form.items() if k != "csrf_token"},
                      headers={"X-CSRF-Token": client.cookies["kuzet_csrf"]})  # fmt: skip
    assert api.status_code == 409  # programs read the English words
    assert "contains the prohibited label" in api.json()["error"]["message"]


@pytest.mark.store
def test_the_reports_downloads_come_in_the_readers_language(site: tuple[Services, TestClient]) -> None:
    _, client = site
    client.post("/login", data={"name": "auditor", "password": PASSWORD})
    client.cookies.set("kuzet_lang", "kk")
    page = client.get("/report?from=2026-01-01&to=2026-01-31").text
    links = {kind: href for href, kind in re.findall(r'<a href="(/api/reports/[^"]+)" id="report-(pdf|html)"', page)}
    assert set(links) == {"pdf", "html"} and all("lang=kk" in link for link in links.values()), links
    pdf = client.get(links["pdf"].replace("&amp;", "&"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert 'filename="kuzet-transparency-2026-01-01-2026-01-31-kk.pdf"' in pdf.headers["content-disposition"]
    text = pdf_text(pdf.content)
    assert "Ашықтық есебі" in text and "Кезең: 2026-01-01 – 2026-01-31" in text and "Transparency" not in text

    client.cookies.set("kuzet_lang", "ru")
    page = client.get("/report?from=2026-01-01&to=2026-01-31").text
    html_link = re.search(r'<a href="([^"]+)" id="report-html"', page)
    assert html_link is not None and "lang=ru" in html_link.group(1)
    russian = client.get(html_link.group(1).replace("&amp;", "&"))
    assert "<title>Отчёт о прозрачности kuzet: 2026-01-01 – 2026-01-31</title>" in russian.text
    assert '<html lang="ru">' in russian.text

    english = client.get("/api/reports/transparency?from=2026-01-01&to=2026-01-31&format=html")  # no lang: English
    assert "<title>kuzet transparency report 2026-01-01 to 2026-01-31</title>" in english.text
    bad = client.get("/api/reports/transparency?from=2026-01-01&to=2026-01-31&format=pdf&lang=de")
    assert bad.status_code == 422
    assert "lang" in bad.json()["error"]["message"] and "'kk', 'ru' or 'en'" in bad.json()["error"]["message"]
