"""The dashboard in a real browser (Debian's Chromium driven by Playwright), each role walking its main flow."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from kuzet.app import Kuzet
from kuzet.core.types import User
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.recognize import FaceEmbedder
from kuzet.web.app import create_app
from tests.conftest import PASSWORD, share_models, utc_today
from tests.web.conftest import serve, sign_in

pytestmark = pytest.mark.store

EXAMPLES = "face_recognition_examples"


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, centerface: CenterFaceDetector, embedder: FaceEmbedder
) -> Iterator[tuple[str, Kuzet, dict[str, User]]]:
    svc = share_models(Kuzet(tmp_path_factory.mktemp("web") / "data"), centerface, embedder)
    admin = svc.init_admin("admin", PASSWORD)
    users = {"admin": admin}
    for name, role in [
        ("olga", "operator"),
        ("rustam", "requester"),
        ("aigul", "approver"),
        ("marat", "reviewer"),
        ("saule", "reviewer"),
        ("timur", "auditor"),
    ]:
        users[name] = svc.add_user(admin, name, PASSWORD, [role])
    with serve(create_app(svc.services)) as base:
        yield base, svc, users
    svc.close()


SHOTS = Path(os.environ.get("KUZET_SCREENSHOTS", "")) if os.environ.get("KUZET_SCREENSHOTS") else None


def _shot(page: Page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


_login = sign_in


@pytest.mark.slow
def test_roles_walk_their_flows_in_the_browser(
    site: tuple[str, Kuzet, dict[str, User]], browser: Browser, faces_dir: Path
) -> None:
    base, svc, users = site
    # A requester files a watchlist entry; an approver approves it in the browser.
    req = WatchlistRequest(
        list_name="wanted",
        subject_name="Barack Obama",
        category="wanted-person",
        legal_basis="court-order",
        reference="2-77/2026",
        authority="Astana city court",
        expires=utc_today() + timedelta(days=30),
        note="seen near the station on 27 November",
    )
    entry = svc.watchlist_request(users["rustam"], req, faces_dir / EXAMPLES / "knn_train_obama_obama.jpg")
    approver = _login(browser, base, "aigul")
    approver.goto(f"{base}/watchlists")
    row = approver.locator(f"#entry-{entry}")
    expect(row.locator(".status")).to_have_text("pending")
    expect(row.locator("img.thumb")).to_be_visible()  # the approver sees the photo, the note and the requester
    expect(row.locator(".note")).to_have_text(req.note)
    expect(row).to_contain_text("rustam")
    _shot(approver, "watchlists")
    row.locator("form[action$='/approve'] input[name=reason]").fill("court order checked")
    row.locator("form[action$='/approve'] button").click()
    expect(approver.locator(".msg")).to_contain_text(f"entry {entry} approved")
    expect(approver.locator(f"#entry-{entry} .status")).to_have_text("approved")

    # A reviewer and an operator watch the overview; a camera raises an alert. The reviewer sees it appear live,
    # without a reload; the operator, who may not see alerts, sees only the count go up.
    watcher = _login(browser, base, "marat")
    watcher.goto(f"{base}/")
    operator = _login(browser, base, "olga")
    operator.goto(f"{base}/")
    expect(watcher.locator("#live-alerts")).to_contain_text("New alerts appear here")
    time.sleep(1.5)  # let the pages' event streams connect
    result = svc.analyze(users["olga"], str(faces_dir / EXAMPLES / "knn_test_obama1.jpg"), camera="gate-3")
    (alert_id,) = result.alert_ids
    expect(watcher.locator("#live-alerts .live-alert")).to_contain_text(f"Alert {alert_id} on gate-3", timeout=15_000)
    expect(watcher.locator("#alerts-pending")).to_have_text("1", timeout=15_000)
    expect(operator.locator("#alerts-pending")).to_have_text("1", timeout=15_000)
    expect(operator.locator("#live-alerts .live-alert")).to_have_count(0)
    _shot(watcher, "overview")

    # Two different reviewers confirm it.
    for name, expected in [("marat", "now pending"), ("saule", "now confirmed")]:
        reviewer = _login(browser, base, name)
        reviewer.goto(f"{base}/review")
        card = reviewer.locator(f"#alert-{alert_id}")
        expect(card).to_contain_text("score")
        expect(card.locator("img.enrolled")).to_be_visible()  # the enrolled photo, beside the best shots
        if name == "marat":
            _shot(reviewer, "review")
        card.locator("input[name=reason]").fill(f"{name}: same face as the enrolled photo")
        card.locator("button[value=confirm]").click()
        expect(reviewer.locator(".msg")).to_contain_text(expected)
    expect(reviewer.locator(f"#alert-{alert_id}")).to_have_count(0)  # the queue holds only what waits for review
    reviewer.click("nav.tabs >> text=decided")
    expect(reviewer.locator(f"#alert-{alert_id} .status")).to_have_text("confirmed")
    assert [a.status for a in svc.review_list(users["timur"], status=None)] == ["confirmed"]

    # An auditor verifies the ledger from the browser.
    auditor = _login(browser, base, "timur")
    auditor.goto(f"{base}/audit")
    auditor.click("#verify")
    expect(auditor.locator("#verdict")).to_contain_text("ledger OK")
    _shot(auditor, "audit")
    auditor.goto(f"{base}/events")
    _shot(auditor, "events")
    auditor.goto(f"{base}/report")
    expect(auditor.locator("h1")).to_contain_text("Transparency report")
    auditor.fill("#report-period input[name=from]", (utc_today() - timedelta(days=7)).isoformat())
    auditor.click("#report-period button")
    expect(auditor.locator(".report")).to_contain_text(f"{utc_today() - timedelta(days=7)}")
    with auditor.expect_download() as download:
        auditor.click("#report-pdf")
    pdf = download.value
    assert pdf.suggested_filename.endswith(".pdf")
    assert Path(pdf.path()).read_bytes().startswith(b"%PDF")
    _shot(auditor, "transparency-report")


def test_login_page_refuses_wrong_password(site: tuple[str, Kuzet, dict[str, User]], browser: Browser) -> None:
    base, _, _ = site
    page = browser.new_context().new_page()
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login")  # not signed in: sent to the sign-in page
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".err")).to_contain_text("wrong user name or password")
    _shot(page, "login")


def test_forms_and_camera_replay(
    site: tuple[str, Kuzet, dict[str, User]], browser: Browser, faces_dir: Path, video_dir: Path
) -> None:
    base, svc, users = site
    # An operator enrols a consenting person through the form.
    operator = _login(browser, base, "olga")
    operator.goto(f"{base}/people")
    operator.fill("form[action='/people'] input[name=name]", "Staff Member")
    operator.set_input_files("input[name=photos]", str(faces_dir / EXAMPLES / "lin-manuel-miranda.png"))
    operator.fill("input[name=consent]", "signed form 17")
    operator.click("form[action='/people'] button")
    expect(operator.locator(".msg")).to_contain_text("enrolment of Staff Member requested")
    # An approver sees the enrolment photo and the consent record, and approves it.
    approver = _login(browser, base, "aigul")
    approver.goto(f"{base}/people")
    row = approver.locator("tr", has_text="Staff Member")
    expect(row.locator(".status")).to_have_text("pending")
    expect(row).to_contain_text("signed form 17")
    approver.wait_for_function("document.querySelector('img.thumb') && document.querySelector('img.thumb').complete")
    assert approver.evaluate("document.querySelector('img.thumb').naturalWidth") > 0
    row.locator("input[name=reason]").first.fill("form 17 checked")
    row.locator("button", has_text="Approve").click()
    expect(approver.locator(".msg")).to_contain_text("approved")
    expect(approver.locator("tr", has_text="Staff Member").locator(".status")).to_have_text("approved")
    # A requester's request labelled "journalist" is refused, with the reason shown.
    requester = _login(browser, base, "rustam")
    requester.goto(f"{base}/watchlists")
    form = requester.locator("#request-form")
    for field, value in [
        ("list_name", "wanted"),
        ("name", "Journalist X"),
        ("reference", "1/2026"),
        ("authority", "court"),
    ]:
        form.locator(f"input[name={field}]").fill(value)
    form.locator("input[name=expires]").fill((utc_today() + timedelta(days=20)).isoformat())
    form.locator("input[name=photo]").set_input_files(str(faces_dir / EXAMPLES / "lin-manuel-miranda.png"))
    form.locator("button").click()
    expect(requester.locator(".err")).to_contain_text("prohibited label")
    # The camera page replays the last analysed video with detections and pixelated faces.
    svc.analyze(users["olga"], str(video_dir / "short_hamilton_clip.mp4"), camera="stage", fps=2)
    operator.goto(f"{base}/cameras/stage")
    operator.wait_for_function(
        "document.getElementById('replay').complete && document.getElementById('replay').naturalWidth > 0",
        timeout=20_000,
    )
    assert operator.evaluate("document.getElementById('replay').naturalWidth") == 640
    _shot(operator, "camera")


def test_face_and_plate_requests_and_the_camera_wall(
    site: tuple[str, Kuzet, dict[str, User]], browser: Browser, faces_dir: Path
) -> None:
    """A requester files a missing person's entry with a photo and a stolen car's by plate through the form; an
    approver sees the plate and approves it; an operator watches the camera wall (an up camera's picture, a failed
    camera's reason)."""
    import cv2
    import numpy as np

    from kuzet.store.status import CameraStatus, ServiceStatus, write_status, write_wall_frame

    base, svc, _ = site
    requester = _login(browser, base, "rustam")
    requester.goto(f"{base}/watchlists")
    form = requester.locator("#request-form")
    person = {"list_name": "missing", "name": "Lin-Manuel Miranda", "reference": "MP-77/2026",
              "authority": "Almaty police", "note": "last seen at the station"}  # fmt: skip
    for field, value in person.items():
        form.locator(f"input[name={field}]").fill(value)
    form.locator("input[name=photo]").set_input_files(str(faces_dir / EXAMPLES / "lin-manuel-miranda.png"))
    form.locator("select[name=category]").select_option("missing-person")
    form.locator("select[name=legal_basis]").select_option("missing-person-report")
    form.locator("input[name=expires]").fill((utc_today() + timedelta(days=20)).isoformat())
    form.locator("button").click()
    expect(requester.locator(".msg")).to_contain_text("requested entry")
    expect(requester.locator("tr", has_text="Lin-Manuel Miranda").locator(".status")).to_have_text("pending")
    form = requester.locator("#request-form")
    fields = {"list_name": "stolen", "name": "white Lada Vesta", "reference": "KUSP-1234",
              "authority": "Almaty police", "plate": "123 ABC 02", "note": "stolen 28 Nov"}  # fmt: skip
    for field, value in fields.items():
        form.locator(f"input[name={field}]").fill(value)
    form.locator("select[name=category]").select_option("stolen-vehicle")
    form.locator("select[name=legal_basis]").select_option("stolen-vehicle-report")
    form.locator("input[name=expires]").fill((utc_today() + timedelta(days=20)).isoformat())
    form.locator("button").click()
    expect(requester.locator(".msg")).to_contain_text("requested entry")
    approver = _login(browser, base, "aigul")
    approver.goto(f"{base}/watchlists")
    row = approver.locator("tr", has_text="white Lada Vesta")
    expect(row.locator(".plate")).to_have_text("123ABC02")  # the approver sees what cameras will look for
    row.locator("form[action$='/approve'] input[name=reason]").fill("report KUSP-1234 checked")
    row.locator("form[action$='/approve'] button").click()
    expect(approver.locator("tr", has_text="white Lada Vesta").locator(".status")).to_have_text("approved")

    data_dir = svc.services.ctx.data_dir
    now = time.time()
    cams = [CameraStatus("gate-3", state="up", frames_analysed=12),
            CameraStatus("gate-4", state="failed", reason="wrong credentials")]  # fmt: skip
    write_status(data_dir, ServiceStatus(pid=1, started=now - 10, updated=now, state="running", cameras=cams))
    picture = np.full((360, 640, 3), 90, np.uint8)
    cv2.putText(picture, "gate-3", (200, 180), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    write_wall_frame(data_dir, "gate-3", cv2.imencode(".jpg", picture)[1].tobytes())
    operator = _login(browser, base, "olga")
    operator.goto(f"{base}/wall")
    operator.wait_for_function("document.querySelector('#tile-gate-3 img.live').naturalWidth > 0")
    assert operator.evaluate("document.querySelector('#tile-gate-3 img.live').naturalWidth") == 640
    expect(operator.locator("#tile-gate-4 .down")).to_contain_text("wrong credentials")
    _shot(operator, "wall")


def test_api_documentation_is_served_by_kuzet_under_its_own_policy(
    site: tuple[str, Kuzet, dict[str, User]], browser: Browser
) -> None:
    base, _, _ = site
    page = browser.new_context().new_page()
    outside: list[str] = []
    blocked: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    assert page.locator(".opblock").count() > 30  # every operation of the API is listed
    expect(page.locator("#swagger-ui")).to_contain_text("/api/events")
    assert outside == [] and blocked == []  # no CDN, nothing the content security policy had to block
    _shot(page, "api-docs")


def test_keyboard_and_phone_width(site: tuple[str, Kuzet, dict[str, User]], browser: Browser) -> None:
    base, _, _ = site
    page = _login(browser, base, "timur")
    page.goto(f"{base}/audit")
    page.keyboard.press("Tab")  # the first stop is the skip link, which jumps past the menu
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.get_attribute("header a[aria-current=page]", "href") == "/audit"
    phone = browser.new_context(viewport={"width": 375, "height": 740}).new_page()
    phone.goto(f"{base}/login")
    phone.fill("input[name=name]", "timur")
    phone.fill("input[name=password]", PASSWORD)
    phone.click("button[type=submit]")
    for path in ("/", "/audit", "/events", "/cameras", "/watchlists", "/users"):
        phone.goto(f"{base}{path}")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width} px wide on a 375 px phone: it scrolls sideways"
    _shot(phone, "audit-phone")


WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
ROLE_USERS = {"admin": "admin", "operator": "olga", "requester": "rustam", "approver": "aigul", "reviewer": "marat",
              "auditor": "timur"}  # fmt: skip


def _axe_problems(page: Page, where: str) -> list[str]:
    """Serious and critical WCAG 2.2 AA violations axe-core finds on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}, "resultTypes": ["violations"]})
    return [
        f"{where}: {v['id']} ({v['impact']}) {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_every_page_for_every_role_passes_axe(site: tuple[str, Kuzet, dict[str, User]], browser: Browser) -> None:
    base, _, _ = site
    problems: list[str] = []
    anonymous = browser.new_context().new_page()
    anonymous.goto(f"{base}/login")
    problems += _axe_problems(anonymous, "/login")
    for role, name in ROLE_USERS.items():
        page = _login(browser, base, name)
        links = page.eval_on_selector_all("header nav a", "els => els.map(e => e.getAttribute('href'))")
        hidden = [h for h in ("/audit", "/users", "/review") if h not in links]
        for href in [h for h in links if h != "/docs"] + hidden[:1] + ["/no-such-page"]:
            page.goto(f"{base}{href}")
            problems += _axe_problems(page, f"{role} {href}")
    assert problems == [], "\n".join(problems)


PAGES = {  # page -> who shows it best
    "/": "marat", "/wall": "olga", "/map": "olga", "/cameras": "olga", "/events": "timur", "/traffic": "timur",
    "/review": "marat", "/watchlists": "aigul", "/people": "aigul", "/audit": "timur", "/report": "timur",
    "/users": "admin", "/system": "timur",
}  # fmt: skip


@pytest.mark.parametrize("lang", ["kk", "en"])
def test_every_page_in_kazakh_and_english(
    site: tuple[str, Kuzet, dict[str, User]], browser: Browser, lang: str
) -> None:
    """Each page in the reader's language (from the browser's Accept-Language); screenshots for docs/screenshots."""
    base, _, _ = site
    signed_in: dict[str, Page] = {}
    for path, name in PAGES.items():
        if name not in signed_in:
            context = browser.new_context(viewport={"width": 1366, "height": 860}, locale=lang)
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("header")).to_contain_text(name)
            signed_in[name] = page
        page = signed_in[name]
        answer = page.goto(f"{base}{path}")
        assert answer is not None and answer.status == 200, path
        assert page.get_attribute("html", "lang") == lang
        if lang == "kk":
            menu = page.inner_text("header nav")
            assert "Overview" not in menu and "Шолу" in menu, f"{path}: the menu is not in Kazakh"
        if SHOTS is not None:
            page.screenshot(path=str(SHOTS / f"{lang}-{path.strip('/') or 'overview'}.png"))
