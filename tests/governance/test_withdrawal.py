"""An entry withdrawn before it expires stops matching at once, with a reason in the ledger; nobody else's to withdraw.

Plate entries (a stolen car found) and face entries (a court order lifted), through the service, the API and the
command line, with the attacks an insider would try: withdrawing someone else's entry, without a reason, twice,
or a rejected one; approving without a reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kuzet.cli.main import app as cli
from kuzet.config.models import KuzetConfig
from kuzet.core.errors import PermissionDenied, PolicyRefusal
from kuzet.core.types import User
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.services.container import Services, build_services
from kuzet.web.app import create_app
from tests.conftest import PASSWORD, utc_today
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store
STOLEN = WatchlistRequest(
    list_name="stolen", subject_name="white Lada Vesta", category="stolen-vehicle",
    legal_basis="stolen-vehicle-report", reference="KUSP-1234", authority="Almaty police",
    expires=utc_today() + timedelta(days=30), note="stolen 28 Nov from Abay avenue",
)  # fmt: skip
REASON = "vehicle recovered; report KUSP-1234 closed"


@pytest.fixture
def team(tmp_path: Path) -> Iterator[tuple[Services, dict[str, User]]]:
    svc = build_services(tmp_path / "data", KuzetConfig())
    admin = svc.users.init_admin("admin", PASSWORD)
    roles = {"req": "requester", "req2": "requester", "appr": "approver", "rev": "reviewer", "op": "operator"}
    users = {"admin": admin} | {k: svc.users.add(admin, k, PASSWORD, [r]) for k, r in roles.items()}
    yield svc, users
    svc.close()


def _approved_plate(svc: Services, u: dict[str, User], plate: str = "123ABC02") -> int:
    entry = svc.watchlists.request(u["req"], STOLEN, plate=plate)
    svc.watchlists.approve(u["appr"], entry, reason="report KUSP-1234 checked")
    return entry


def _actions(svc: Services, action: str) -> list[tuple[str, str, str]]:
    with raw_db(svc.ctx.data_dir, read_only=True) as db:
        rows = db.execute("SELECT actor, object, justification FROM audit_entries WHERE action = ?", (action,))
        return [tuple(r) for r in rows.fetchall()]


def test_a_withdrawn_plate_stops_matching_and_its_template_is_destroyed(
    team: tuple[Services, dict[str, User]],
) -> None:
    svc, u = team
    entry = _approved_plate(svc, u)
    assert "123ABC02" in svc.watchlists.active_plates()
    assert svc.watchlists.withdraw(u["req"], entry, reason=REASON) == 1
    assert svc.watchlists.active_plates() == {}
    (shown,) = svc.watchlists.show(u["appr"], status="withdrawn")
    assert (shown.entry_id, shown.withdrawn_by, shown.withdraw_reason) == (entry, "req", REASON)
    assert shown.approver == "appr"  # who approved it stays on record
    assert _actions(svc, "watchlist.withdraw") == [("req", f"watchlist:{entry}", REASON)]
    with raw_db(svc.ctx.data_dir, read_only=True) as db:
        left = db.execute("SELECT COUNT(*) FROM watchlist_templates WHERE entry_id = ?", (entry,)).fetchone()[0]
    assert left == 0
    assert svc.audit.verify(None).ok


def test_insiders_cannot_withdraw_what_is_not_theirs_or_without_a_reason(
    team: tuple[Services, dict[str, User]],
) -> None:
    svc, u = team
    entry = _approved_plate(svc, u)
    with pytest.raises(PolicyRefusal, match="requested by someone else"):
        svc.watchlists.withdraw(u["req2"], entry, reason="I want this car off the list")
    for outsider in ("rev", "op"):
        with pytest.raises(PermissionDenied):
            svc.watchlists.withdraw(u[outsider], entry, reason=REASON)
    for reason in ("", "   ", "found"):
        with pytest.raises(PolicyRefusal, match="needs a reason"):
            svc.watchlists.withdraw(u["req"], entry, reason=reason)
    with pytest.raises(PolicyRefusal, match="prohibited label"):
        svc.watchlists.withdraw(u["req"], entry, reason="the owner is a known activist, drop it")
    assert "123ABC02" in svc.watchlists.active_plates()  # every attempt left it matching
    refusals = _actions(svc, "watchlist.withdraw_refused")
    assert len(refusals) == 5 and {r[1] for r in refusals} == {f"watchlist:{entry}"}

    svc.watchlists.withdraw(u["appr"], entry, reason=REASON)  # an approver may withdraw anyone's
    with pytest.raises(PolicyRefusal, match="is withdrawn"):
        svc.watchlists.withdraw(u["appr"], entry, reason=REASON)
    rejected = svc.watchlists.request(u["req"], dataclasses.replace(STOLEN, reference="KUSP-9"), plate="777AAA02")
    svc.watchlists.reject(u["appr"], rejected, reason="report number unknown to the police")
    with pytest.raises(PolicyRefusal, match="is rejected"):
        svc.watchlists.withdraw(u["req"], rejected, reason=REASON)


def test_approval_needs_a_written_reason(team: tuple[Services, dict[str, User]]) -> None:
    svc, u = team
    entry = svc.watchlists.request(u["req"], STOLEN, plate="123ABC02")
    for reason in ("", "ok"):
        with pytest.raises(PolicyRefusal, match="an approval needs a reason"):
            svc.watchlists.approve(u["appr"], entry, reason=reason)
    assert svc.watchlists.active_plates() == {}
    assert len(_actions(svc, "watchlist.approve_refused")) == 2


def test_plate_entries_through_the_api_and_the_dashboard(team: tuple[Services, dict[str, User]]) -> None:
    svc, u = team
    with TestClient(create_app(svc), follow_redirects=False) as client:
        token = {r: svc.users.login(r, PASSWORD)[1] for r in ("req", "appr")}
        form = {
            "list_name": "stolen", "name": "white Lada Vesta", "category": "stolen-vehicle",
            "legal_basis": "stolen-vehicle-report", "reference": "KUSP-1234", "authority": "Almaty police",
            "expires": (utc_today() + timedelta(days=30)).isoformat(), "note": "stolen 28 Nov", "plate": "123 abc 02",
        }  # fmt: skip
        made = client.post("/api/watchlists", data=form, headers={"Authorization": f"Bearer {token['req']}"})
        assert made.status_code == 201, made.text
        entry = made.json()["id"]
        neither = client.post(
            "/api/watchlists", data={**form, "plate": "", "category": "wanted-person", "legal_basis": "court-order"},
            headers={"Authorization": f"Bearer {token['req']}"},
        )  # fmt: skip
        assert neither.status_code == 422 and "photo" in neither.json()["error"]["message"]

        client.post("/login", data={"name": "appr", "password": PASSWORD})
        page = client.get("/watchlists").text
        row = page.split(f'id="entry-{entry}"', 1)[1].split("</tr>", 1)[0]
        assert "123ABC02" in row and "stolen 28 Nov" in row and ">req, " in row  # plate, note, requester
        assert _actions(svc, "watchlist.plates_view")  # seeing the plate is audited
        csrf = client.cookies["kuzet_csrf"]
        short = client.post(f"/watchlists/{entry}/approve", data={"reason": "ok", "csrf_token": csrf})
        assert "needs a reason" in client.get(short.headers["location"]).text
        client.post(f"/watchlists/{entry}/approve", data={"reason": "report KUSP-1234 checked", "csrf_token": csrf})
        assert "123ABC02" in svc.watchlists.active_plates()
        gone = client.post(f"/watchlists/{entry}/withdraw", data={"reason": REASON, "csrf_token": csrf})
        assert f"entry {entry} withdrawn" in client.get(gone.headers["location"]).text
        assert svc.watchlists.active_plates() == {}

        other = svc.watchlists.request(u["req"], STOLEN, plate="555XYZ02")
        svc.watchlists.approve(u["appr"], other, reason="report KUSP-1234 checked")
        api = client.post(
            f"/api/watchlists/{other}/withdraw",
            json={"reason": REASON},
            headers={"Authorization": f"Bearer {token['req']}"},
        )
        assert api.status_code == 200 and api.json() == {"id": other, "status": "withdrawn", "templates_destroyed": 1}


def test_withdrawal_from_the_command_line(
    team: tuple[Services, dict[str, User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, u = team
    entry = _approved_plate(svc, u)
    monkeypatch.setenv("KUZET_HOME", str(svc.ctx.data_dir))
    monkeypatch.setenv("KUZET_TOKEN", svc.users.login("req", PASSWORD)[1])
    runner = CliRunner()
    missing = runner.invoke(cli, ["watchlist", "withdraw", str(entry)])
    assert missing.exit_code != 0 and "--reason" in missing.output
    done = runner.invoke(cli, ["watchlist", "withdraw", str(entry), "--reason", REASON])
    assert done.exit_code == 0, done.output
    assert f"withdrew watchlist entry {entry}" in done.output
    assert svc.watchlists.active_plates() == {}
