"""A reviewer marks a confirmed-wrong match: the same appearance is not alerted again for that entry, while it lasts.

Real photos (LFW), the production detector and embedder. The category's threshold is lowered (0.8) so that one
person (Tony Blair, 0.84-0.87 to the entry's photo) falsely matches another's entry (George W. Bush; his other photos
score 0.95-0.97): a look-alike, as a busy checkpoint will meet.
"""

from __future__ import annotations

import importlib.resources
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kuzet.app import Kuzet
from kuzet.core.errors import InputError, NotFoundError, PermissionDenied, PolicyRefusal
from kuzet.core.types import User
from kuzet.governance.policy import load_policy
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.store.crypto import blob_key_id
from kuzet.store.models import AppearanceRow
from tests.conftest import add_user, utc_today

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
        reference="2-345/2026", authority="Almaty city court", expires=utc_today() + timedelta(days=60), note="",
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


def _approve_mark(svc: Kuzet, team: dict[str, User], alert: int) -> str:
    return svc.services.review.decide_mark(team["rev2"], alert, "approve", reason="compared: another man, mark holds")


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
    (pending,) = svc.services.review.marks(team["rev2"])
    assert (pending.alert_id, pending.entry_id, pending.marked_by, pending.status) == (
        false_alert,
        entry,
        "marat",
        "pending",
    )
    assert pending.reason == "another man: ears differ"
    assert _approve_mark(svc, team, false_alert) == "approved"
    assert svc.services.review.marks(team["aud"]) == []  # nothing left waiting
    (kept,) = svc.services.review.marks(team["aud"], pending_only=False)
    assert (kept.status, kept.approved_by) == ("approved", "saule")

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
    report = svc.services.reports.transparency(team["aud"], utc_today(), utc_today())
    assert report.alerts == {
        "created": 2, "confirmed": 1, "rejected": 1, "pending": 0, "marked_wrong_match": 1, "marks_approved": 1,
        "marks_rejected": 0, "suppressed_as_wrong_match": 1,
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
    _approve_mark(svc, team, false_alert)

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


def test_an_insider_who_marks_the_subject_needs_a_second_person_and_cannot_hide_it_from_the_ledger(
    lax: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    """A reviewer shields the real subject by marking a true alert wrong.

    The mark does nothing until a second reviewer approves it: the subject is still alerted. The reviewer cannot
    approve their own mark, nor can an approver (who does not review alerts). A second reviewer who rejects it
    destroys it. And if a second reviewer colludes, every hit the mark suppresses is still ledgered.
    """
    svc, lfw = lax, faces_dir / LFW
    entry = _entry(svc, team, lfw / "George_W_Bush" / "George_W_Bush_0001.jpg")
    (true_alert,) = svc.analyze(team["op"], str(lfw / "George_W_Bush" / "George_W_Bush_0002.jpg")).alert_ids
    svc.review(team["rev1"], true_alert, "reject", reason="not him, trust me", wrong_match=True)
    seen = svc.analyze(team["op"], str(lfw / "George_W_Bush" / "George_W_Bush_0003.jpg"))
    assert len(seen.alert_ids) == 1 and _suppressed(svc, team) == []  # a pending mark suppresses nothing

    (second,) = seen.alert_ids
    svc.review(team["rev1"], second, "reject", reason="not him either, trust me", wrong_match=True)
    with pytest.raises(PolicyRefusal, match="marat requested the wrong-match mark of alert .* cannot also approve"):
        svc.services.review.decide_mark(team["rev1"], second, "approve", reason="my own mark, surely fine")
    with pytest.raises(PermissionDenied):  # approvers do not review alerts, nor their marks
        svc.services.review.decide_mark(team["appr"], true_alert, "approve", reason="a reviewer's mark, fine")
    with pytest.raises(PolicyRefusal, match="needs a reason"):
        svc.services.review.decide_mark(team["rev2"], true_alert, "approve", reason="  ")
    assert svc.services.review.decide_mark(team["rev2"], second, "reject", reason="same ears as the entry") == (
        "rejected"
    )
    assert _appearances(svc, wrong=True) == 1  # the rejected mark's appearance is destroyed
    with pytest.raises(NotFoundError, match="no wrong-match mark"):
        svc.services.review.decide_mark(team["rev2"], second, "approve", reason="changed my mind after all")

    assert _approve_mark(svc, team, true_alert) == "approved"  # a second reviewer colludes
    with pytest.raises(PolicyRefusal, match="is approved, not pending"):
        _approve_mark(svc, team, true_alert)
    hidden = svc.analyze(team["op"], str(lfw / "George_W_Bush" / "George_W_Bush_0004.jpg"))
    suppressed = [e for e in svc.audit_log(team["aud"], action="alert.suppressed")]
    assert len(suppressed) + len(hidden.alert_ids) == 1  # suppressed and ledgered, or alerted: never silently lost
    assert all(e.object == f"watchlist:{entry}" and e.actor == "olga" for e in suppressed)
    for why in _suppressed(svc, team):
        assert why["wrong_match_alert"] == true_alert
    ledger = svc.audit_log(team["aud"], limit=10_000)
    decided = [(e.action, e.actor, e.object) for e in ledger if e.action.startswith("review.mark_")]
    assert ("review.mark_rejected", "saule", f"alert:{second}") in decided
    assert ("review.mark_approved", "saule", f"alert:{true_alert}") in decided
    assert [e.actor for e in ledger if e.action == "review.mark_refused"] == ["marat", "saule", "saule"]
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
    with TestClient(create_app(svc.services), follow_redirects=False) as client:
        client.post("/login", data={"name": "saule", "password": PASSWORD})
        page = client.get("/review").text
        assert f'id="mark-{false_alert}"' in page and "another man: ears differ" in page  # the second reviewer sees why
        assert f"/api/media/alert/{false_alert}?index=0" in page  # and what to compare: the best shot, the entry photo
        form = {"reason": "compared the photos: another man", "csrf_token": client.cookies["kuzet_csrf"]}
        done = client.get(client.post(f"/marks/{false_alert}/approve", data=form).headers["location"]).text
        assert f"the wrong-match mark of alert {false_alert} approved" in done
        assert f'id="mark-{false_alert}"' not in done
    assert svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0003.jpg")).alert_ids == []


def test_marks_are_made_listed_and_approved_from_the_command_line(
    lax: Kuzet, team: dict[str, User], faces_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from kuzet.cli.main import app
    from tests.conftest import PASSWORD

    svc, lfw = lax, faces_dir / LFW
    _entry(svc, team, lfw / "George_W_Bush" / "George_W_Bush_0001.jpg")
    (false_alert,) = svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0002.jpg")).alert_ids
    data = str(tmp_path / "data")
    runner = CliRunner()

    def kuzet(user: str, *args: str) -> tuple[int, str]:
        signed = runner.invoke(app, ["--data-dir", data, "login", user, "--password-stdin"], input=PASSWORD + "\n")
        assert signed.exit_code == 0, signed.output
        result = runner.invoke(app, ["--data-dir", data, *args])
        return result.exit_code, result.output

    code, out = kuzet("marat", "review", "reject", str(false_alert), "--reason", "another man", "--wrong-match")
    assert code == 0 and "in force once a second reviewer approves the mark" in out, out
    code, out = kuzet("aigul", "review", "marks", "--json")
    assert code == 0 and [(m["alert_id"], m["status"], m["marked_by"]) for m in json.loads(out)] == [
        (false_alert, "pending", "marat")
    ]
    code, out = kuzet("marat", "review", "approve-mark", str(false_alert), "--reason", "my own mark is right")
    assert code != 0 and "cannot also approve" in out  # the reviewer who marked cannot approve the mark
    code, out = kuzet("aigul", "review", "approve-mark", str(false_alert), "--reason", "an approver's opinion")
    assert code != 0 and "approve or reject wrong-match marks" in out  # approvers do not review alerts
    code, out = kuzet("saule", "review", "approve-mark", str(false_alert), "--reason", "compared: another man")
    assert code == 0 and f"alert {false_alert}: wrong-match mark approved" in out, out
    code, out = kuzet("timur", "review", "marks", "--all", "--json")
    assert code == 0 and json.loads(out)[0]["approved_by"] == "saule"
    assert svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0003.jpg")).alert_ids == []


def test_marks_made_before_the_four_eyes_rule_wait_for_a_second_reviewer(
    lax: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    """Revision 0009 (the rule) meets a mark made under 0008, when one reviewer's mark was enough."""
    import importlib.resources

    from alembic import command
    from alembic.config import Config

    svc, lfw = lax, faces_dir / LFW
    _entry(svc, team, lfw / "George_W_Bush" / "George_W_Bush_0001.jpg")
    (false_alert,) = svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0002.jpg")).alert_ids
    svc.review(team["rev1"], false_alert, "reject", reason="another man: ears differ", wrong_match=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files("kuzet.store").joinpath("migrations")))
    db = svc.services.ctx.db
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")  # the mark as 0008 kept it: no approval columns
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    (mark,) = svc.services.review.marks(team["aud"])
    assert (mark.status, mark.marked_by, mark.approved_by) == ("pending", "marat", None)
    assert len(svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0003.jpg")).alert_ids) == 1
    _approve_mark(svc, team, false_alert)
    assert svc.analyze(team["op"], str(lfw / "Tony_Blair" / "Tony_Blair_0004.jpg")).alert_ids == []
