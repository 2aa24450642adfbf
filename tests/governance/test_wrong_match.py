"""A reviewer marks a confirmed-wrong match: the same appearance is not alerted again for that entry, while it lasts.

Real photos (LFW), the production detector and embedder. The category's threshold is lowered (0.8) so that one
person (Tony Blair, 0.84-0.87 to the entry's photo) falsely matches another's entry (George W. Bush; his other photos
score 0.95-0.97): a look-alike, as a busy checkpoint will meet.
"""

from __future__ import annotations

import importlib.resources
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kuzet.app import Kuzet
from kuzet.core.errors import InputError, PermissionDenied
from kuzet.core.types import User
from kuzet.governance.policy import load_policy
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.store.crypto import blob_key_id
from kuzet.store.models import AppearanceRow
from tests.conftest import add_user

pytestmark = pytest.mark.store

LFW = "lfw_original_10id"


@pytest.fixture
def team(service: Kuzet) -> dict[str, User]:
    return {
        "req": add_user(service, "rustam", "requester"),
        "appr": add_user(service, "aigul", "approver"),
        "rev1": add_user(service, "marat", "reviewer"),
        "rev2": add_user(service, "saule", "reviewer"),
        "op": add_user(service, "olga", "operator"),
        "aud": add_user(service, "timur", "auditor"),
    }


@pytest.fixture
def lax(service: Kuzet, tmp_path: Path) -> Kuzet:
    """The default policy with wanted-person's threshold lowered until look-alikes match (a false match to mark)."""
    default = importlib.resources.files("kuzet.governance").joinpath("default_policy.yaml").read_text()
    wanted = default.index("  wanted-person:")
    rate = default.index("false_match_rate: 0.001", wanted)
    end = default.index("\n", rate)
    path = tmp_path / "policy.yaml"
    path.write_text(default[:rate] + "threshold: 0.8" + default[end:])
    service.policy = load_policy(path)
    return service


def _entry(svc: Kuzet, team: dict[str, User], photo: Path) -> int:
    req = WatchlistRequest(
        list_name="wanted", subject_name="G. W. B.", category="wanted-person", legal_basis="court-order",
        reference="2-345/2026", authority="Almaty city court", expires=date.today() + timedelta(days=60), note="",
    )  # fmt: skip
    entry = svc.watchlist_request(team["req"], req, photo)
    svc.watchlist_approve(team["appr"], entry, reason="court order checked with the court")
    return entry


def _appearances(svc: Kuzet, *, wrong: bool | None = None) -> int:
    with svc.services.uow.read() as r:
        query = select(func.count()).select_from(AppearanceRow)
        if wrong is not None:
            query = query.where(AppearanceRow.wrong_match.is_(wrong))
        return int(r.session.scalar(query) or 0)


def _suppressed(svc: Kuzet, team: dict[str, User]) -> list[dict[str, object]]:
    return [dict(e.details or {}) for e in svc.audit_log(team["aud"], action="alert.suppressed")]


def test_a_marked_wrong_match_is_not_alerted_again_but_the_subject_is(
    lax: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    svc, lfw = lax, faces_dir / LFW
    entry = _entry(svc, team, lfw / "George_W_Bush" / "George_W_Bush_0001.jpg")
    (false_alert,) = svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0002.jpg")).alert_ids
    assert _appearances(svc) == 1  # the track's descriptors wait, encrypted, with the alert

    with pytest.raises(InputError, match="only a rejection can mark a wrong match"):
        svc.review(team["rev1"], false_alert, "confirm", reason="looks alike", wrong_match=True)
    with pytest.raises(PermissionDenied):  # an operator may not decide, let alone mark
        svc.review(team["op"], false_alert, "reject", reason="not him at all", wrong_match=True)
    status = svc.review(team["rev1"], false_alert, "reject", reason="another man: ears differ", wrong_match=True)
    assert status == "rejected" and _appearances(svc, wrong=True) == 1
    (marked,) = [e for e in svc.audit_log(team["aud"], action="review.reject") if e.object == f"alert:{false_alert}"]
    assert marked.details == {"confirmations": 0, "required": 2, "wrong_match": True, "entry": entry}

    again = svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0003.jpg"))
    assert again.alert_ids == []  # the same man, another photo: not alerted again for this entry
    (why,) = _suppressed(svc, team)
    assert why["wrong_match_alert"] == false_alert and float(str(why["similarity"])) >= float(str(why["score"]))

    subject = svc.analyze(team["op"], str(lfw / "George_W_Bush" / "George_W_Bush_0002.jpg")).alert_ids
    assert len(subject) == 1  # the entry's own subject looks more like the entry than like the marked look-alike
    assert len(_suppressed(svc, team)) == 1
    svc.review(team["rev1"], subject[0], "confirm", reason="same face, same ears")
    assert svc.review(team["rev2"], subject[0], "confirm", reason="agree, same person") == "confirmed"
    assert _appearances(svc, wrong=False) == 0  # a decided alert's descriptors are destroyed with the decision
    report = svc.services.reports.transparency(team["aud"], date.today(), date.today())
    assert report.alerts == {
        "created": 2, "confirmed": 1, "rejected": 1, "pending": 0, "marked_wrong_match": 1,
        "suppressed_as_wrong_match": 1,
    }  # fmt: skip
    assert svc.audit_verify(team["aud"]).ok


def test_a_wrong_match_lasts_as_long_as_its_entry_and_survives_key_rotation(
    lax: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    svc, lfw = lax, faces_dir / LFW
    bush = lfw / "George_W_Bush" / "George_W_Bush_0001.jpg"
    entry = _entry(svc, team, bush)
    (false_alert,) = svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0002.jpg")).alert_ids
    svc.review(team["rev1"], false_alert, "reject", reason="another man: ears differ", wrong_match=True)

    admin = svc.login("admin", "correct horse battery")[0]
    new_key = svc.keys_rotate(admin, grace_s=0)
    with svc.services.uow.read() as r:
        (blob,) = r.session.scalars(select(AppearanceRow.vectors))
    assert blob_key_id(blob) == new_key  # moved onto the new key with the templates
    assert svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0004.jpg")).alert_ids == []

    svc.services.watchlists.withdraw(team["req"], entry, reason="order lifted by the court today")
    assert _appearances(svc) == 0  # the case is over: the look-alike's descriptors go with the entry's templates
    second = _entry(svc, team, bush)  # a new case for the same person starts without the old mark
    assert len(svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0004.jpg")).alert_ids) == 1
    assert second != entry and len(_suppressed(svc, team)) == 1


def test_an_insider_who_marks_the_subject_cannot_hide_it_from_the_ledger(
    lax: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    """A reviewer shields the real subject by marking a true alert wrong: every hit it suppresses is ledgered."""
    svc, lfw = lax, faces_dir / LFW
    entry = _entry(svc, team, lfw / "George_W_Bush" / "George_W_Bush_0001.jpg")
    (true_alert,) = svc.analyze(team["op"], str(lfw / "George_W_Bush" / "George_W_Bush_0002.jpg")).alert_ids
    svc.review(team["rev1"], true_alert, "reject", reason="not him, trust me", wrong_match=True)
    hidden = svc.analyze(team["op"], str(lfw / "George_W_Bush" / "George_W_Bush_0003.jpg"))
    for why in _suppressed(svc, team) if not hidden.alert_ids else []:
        assert why["wrong_match_alert"] == true_alert and why["camera"] == "default"
    suppressed = [e for e in svc.audit_log(team["aud"], action="alert.suppressed")]
    assert len(suppressed) + len(hidden.alert_ids) == 1  # suppressed and ledgered, or alerted: never silently lost
    assert all(e.object == f"watchlist:{entry}" and e.actor == "olga" for e in suppressed)
    assert svc.audit_verify(team["aud"]).ok


def test_the_review_page_marks_a_wrong_match_beside_reject(lax: Kuzet, team: dict[str, User], faces_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from kuzet.web.app import create_app
    from tests.conftest import PASSWORD

    svc, lfw = lax, faces_dir / LFW
    _entry(svc, team, lfw / "George_W_Bush" / "George_W_Bush_0001.jpg")
    (false_alert,) = svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0002.jpg")).alert_ids
    with TestClient(create_app(svc.services), follow_redirects=False) as client:
        client.post("/login", data={"name": "marat", "password": PASSWORD})
        page = client.get("/review").text
        assert 'name="wrong_match"' in page  # a face alert offers the mark
        csrf = client.cookies["kuzet_csrf"]
        form = {"decision": "confirm", "reason": "looks like him", "wrong_match": "1", "csrf_token": csrf}
        refused = client.get(client.post(f"/review/{false_alert}", data=form).headers["location"]).text
        assert "only a rejection can mark a wrong match" in refused
        form |= {"decision": "reject", "reason": "another man: ears differ"}
        done = client.get(client.post(f"/review/{false_alert}", data=form).headers["location"]).text
        assert f"alert {false_alert}: reject recorded, now rejected" in done
    assert _appearances(svc, wrong=True) == 1
    assert svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0003.jpg")).alert_ids == []
