"""Enrolment under the same four-eyes rule as watchlists (finding 2): consent, a second person, a scope, an expiry."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kuzet.app import Kuzet
from kuzet.config.models import KuzetConfig
from kuzet.core.errors import PolicyRefusal
from kuzet.core.types import User
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.recognize import FaceEmbedder
from tests.conftest import PASSWORD, add_user, share_models, utc_today
from tests.support.rawdb import raw_db, store_url

pytestmark = pytest.mark.store

EXAMPLES = "face_recognition_examples"
OBAMA = f"{EXAMPLES}/knn_train_obama_obama.jpg"
OBAMA_TEST = f"{EXAMPLES}/knn_test_obama1.jpg"


@pytest.fixture
def team(service: Kuzet) -> dict[str, User]:
    return {
        "op": add_user(service, "olga", "operator"),
        "appr": add_user(service, "aigul", "approver"),
        "op_appr": add_user(service, "dana", "operator", "approver"),
        "aud": add_user(service, "timur", "auditor"),
    }


def _names(svc: Kuzet, actor: User, photo: Path, camera: str = "default") -> list[str]:
    return [e.identity for e in svc.analyze(actor, str(photo), camera=camera).events]


def test_a_pending_enrolment_matches_nobody_until_someone_else_approves(
    service: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    """One operator could enrol anyone as "consenting" and have every later sighting named."""
    person = service.enroll(team["op_appr"], "Barack Obama", [faces_dir / OBAMA], consent="staff form 3")
    pid = person.identity.person_id
    assert _names(service, team["op"], faces_dir / OBAMA_TEST) == []  # pending: an unknown face
    with pytest.raises(PolicyRefusal, match="cannot also approve"):
        service.people_approve(team["op_appr"], pid)  # the one who enrolled cannot approve, even as an approver
    service.people_approve(team["appr"], pid, reason="form 3 checked")
    assert _names(service, team["op"], faces_dir / OBAMA_TEST) == ["Barack Obama"]
    actions = [e.action for e in service.audit_log(team["aud"])]
    assert {"enrol", "enrol.approve_refused", "enrol.approve"} <= set(actions)
    (row,) = service.people(team["aud"])
    assert row.status == "approved" and row.consent == "staff form 3" and row.expires_at


def test_a_rejected_enrolment_keeps_no_template_and_no_photo(
    service: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    pid = service.enroll(team["op"], "Barack Obama", [faces_dir / OBAMA], consent="form 4").identity.person_id
    photos = list((service.data_dir / "media" / "enrolment").rglob("*.enc"))
    assert len(photos) == 1
    assert service.media_export(team["appr"], "person", pid, unredacted=False, justification="")  # approver looks
    with pytest.raises(PolicyRefusal, match="needs a reason"):
        service.people_reject(team["appr"], pid, reason=" ")
    service.people_reject(team["appr"], pid, reason="no consent form on file")
    assert not any(p.exists() for p in photos)
    (row,) = service.people(team["aud"], status="rejected")
    assert row.templates == 0
    with pytest.raises(PolicyRefusal, match="rejected, not pending"):
        service.people_approve(team["appr"], pid)
    # A new enrolment of the same name starts again from pending.
    again = service.enroll(team["op"], "Barack Obama", [faces_dir / OBAMA], consent="form 5, signed")
    assert again.identity.person_id == pid and service.people(team["aud"])[0].status == "pending"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"consent": ""}, "consent record"),
        ({"consent": "  "}, "consent record"),
        ({"consent": "form 1", "scope": ["gate-2", "watch prot\u00adesters"]}, "prohibited label"),
        ({"consent": "bl\u200bogger's consent"}, "prohibited label"),
        ({"consent": "form 1", "expires": utc_today() - timedelta(days=1)}, "in the future"),
        ({"consent": "form 1", "expires": utc_today() + timedelta(days=800)}, "730-day maximum"),
    ],
)
def test_enrolments_breaking_policy_are_refused_and_audited(
    service: Kuzet, team: dict[str, User], faces_dir: Path, kwargs: dict[str, object], reason: str
) -> None:
    with pytest.raises(PolicyRefusal, match=reason):
        service.enroll(team["op"], "Barack Obama", [faces_dir / OBAMA], **kwargs)  # type: ignore[arg-type]
    assert service.people(team["aud"]) == []
    assert [e.action for e in service.audit_log(team["aud"], action="enrol.refused")] == ["enrol.refused"]


def test_a_person_is_recognised_only_on_cameras_in_scope(
    tmp_path: Path, faces_dir: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder
) -> None:
    config = KuzetConfig.model_validate(
        {
            "cameras": [
                {"name": "gate-2", "purpose": "staff access"},
                {"name": "gate-3", "purpose": "Staff  Access"},
                {"name": "lobby", "purpose": "visitor counting"},
            ]
        }
    )
    svc = share_models(Kuzet(tmp_path / "data", config), centerface, embedder)
    admin = svc.init_admin("admin", PASSWORD)
    op = svc.add_user(admin, "olga", PASSWORD, ["operator"])
    appr = svc.add_user(admin, "aigul", PASSWORD, ["approver"])
    pid = svc.enroll(op, "Barack Obama", [faces_dir / OBAMA], consent="f1", scope=["staff access", "desk-1"])
    svc.people_approve(appr, pid.identity.person_id)
    seen = {cam: _names(svc, op, faces_dir / OBAMA_TEST, cam) for cam in ("gate-2", "gate-3", "lobby", "desk-1", "x")}
    assert seen == {
        "gate-2": ["Barack Obama"],
        "gate-3": ["Barack Obama"],
        "lobby": [],
        "desk-1": ["Barack Obama"],
        "x": [],
    }
    svc.close()


def test_an_expired_enrolment_stops_matching_and_its_templates_are_destroyed(
    service: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    pid = service.enroll(
        team["op"], "Barack Obama", [faces_dir / OBAMA], consent="f1", expires=utc_today() + timedelta(days=1)
    ).identity.person_id
    service.people_approve(team["appr"], pid)
    assert _names(service, team["op"], faces_dir / OBAMA_TEST) == ["Barack Obama"]
    service.now = lambda: datetime.now(UTC) + timedelta(days=2)
    assert _names(service, team["op"], faces_dir / OBAMA_TEST) == []
    (row,) = service.people(team["aud"])
    assert row.status == "expired" and row.templates == 0
    assert "enrol.expired" in [e.action for e in service.audit_log(team["aud"])]


def test_approve_and_reject_of_one_request_cannot_both_pass(
    service: Kuzet, team: dict[str, User], faces_dir: Path
) -> None:
    """Finding 9: the status was checked outside the transaction, so approve and reject could race."""
    from kuzet.governance.watchlists import WatchlistRequest

    requester = add_user(service, "rustam", "requester")
    approver2 = add_user(service, "bota", "approver")
    for i in range(4):
        entry = service.watchlist_request(
            requester,
            WatchlistRequest(
                "l",
                f"P{i}",
                "missing-person",
                "missing-person-report",
                f"MP-{i}",
                "police",
                utc_today() + timedelta(9),
            ),
            faces_dir / OBAMA,
        )
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def decide(
            user: User,
            how: str,
            entry: int = entry,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            other = Kuzet(service.data_dir)
            barrier.wait()
            try:
                if how == "approve":
                    other.watchlist_approve(user, entry, reason="court order checked")
                else:
                    other.watchlist_reject(user, entry, reason="order not found")
                outcomes.append(how)
            except PolicyRefusal:
                outcomes.append("refused")
            finally:
                other.close()

        threads = [
            threading.Thread(target=decide, args=(team["appr"], "approve")),
            threading.Thread(target=decide, args=(approver2, "reject")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) in (["approve", "refused"], ["refused", "reject"]), outcomes
        (shown,) = [e for e in service.watchlist_show(team["aud"]) if e.entry_id == entry]
        assert shown.status == ("approved" if "approve" in outcomes else "rejected")


def test_people_enrolled_before_the_rule_wait_for_an_approver(tmp_path: Path) -> None:
    """The migration keeps an older kuzet's enrolments (their templates) but makes them pending."""
    import importlib.resources

    from alembic import command
    from alembic.config import Config

    from kuzet.store.db import Database

    db = Database(store_url(tmp_path))
    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files("kuzet.store").joinpath("migrations")))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    with raw_db(tmp_path) as con:
        con.execute("INSERT INTO people (name, created_at, consent_basis) VALUES ('Old Staff', '2026-01-01', 'x')")
    db.migrate()
    db.dispose()
    with raw_db(tmp_path) as con:
        assert con.execute("SELECT status, scope FROM people").fetchone() == ("pending", '["*"]')
