"""Bad input to the services: a clear error (ledgered where it is a governance refusal), and nothing changed.

Each case was a silent wrong answer or an unbounded text before; none of them needs a face model, so the services are
built without loading one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import EnrolmentError, InputError, NotFoundError, PolicyRefusal
from kuzet.core.types import User
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.services.container import Services, build_services
from kuzet.services.uow import MAX_JUSTIFICATION
from tests.conftest import PASSWORD, utc_today
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store
STOLEN = WatchlistRequest(
    list_name="stolen", subject_name="white Lada Vesta", category="stolen-vehicle",
    legal_basis="stolen-vehicle-report", reference="KUSP-1234", authority="Almaty police",
    expires=utc_today() + timedelta(days=30), note="stolen 28 Nov from Abay avenue",
)  # fmt: skip


@pytest.fixture
def team(tmp_path: Path) -> Iterator[tuple[Services, dict[str, User]]]:
    svc = build_services(tmp_path / "data", KuzetConfig())
    admin = svc.users.init_admin("admin", PASSWORD)
    roles = {"req": "requester", "req2": "requester", "appr": "approver", "aud": "auditor", "op": "operator"}
    users = {"admin": admin} | {k: svc.users.add(admin, k, PASSWORD, [r]) for k, r in roles.items()}
    yield svc, users
    svc.close()


def _actions(svc: Services, action: str) -> list[tuple[str, str]]:
    with raw_db(svc.ctx.data_dir, read_only=True) as db:
        rows = db.execute("SELECT object, justification FROM audit_entries WHERE action = ?", (action,))
        return [tuple(r) for r in rows.fetchall()]


def test_releasing_a_case_without_holds_is_an_error_and_changes_nothing(
    team: tuple[Services, dict[str, User]],
) -> None:
    """A mistyped case read as "released 0 hold(s)": the real case stayed held while people thought it released."""
    svc, u = team
    entry = svc.watchlists.request(u["req"], STOLEN, plate="123ABC02")
    svc.retention.hold(u["aud"], "CASE-7", "watchlist", entry, reason="evidence in case 7")
    with pytest.raises(InputError, match="case 'CASE-8' has no active hold") as info:
        svc.retention.release(u["aud"], "CASE-8", reason="case 8 closed by the court")
    assert "kuzet hold list" in info.value.hint
    assert [(h.case, h.object_id) for h in svc.retention.holds(u["aud"])] == [("CASE-7", entry)]
    assert not _actions(svc, "hold.release")
    # the case as `hold` stored it (stripped) is found, once; a second release finds nothing left
    assert svc.retention.release(u["aud"], " CASE-7 ", reason="case 7 closed by the court") == 1
    assert svc.retention.holds(u["aud"]) == []
    with pytest.raises(InputError, match="no active hold"):
        svc.retention.release(u["aud"], "CASE-7", reason="case 7 closed by the court")
    assert len(_actions(svc, "hold.release")) == 1


def test_a_consistency_proof_between_checkpoints_given_the_wrong_way_round_is_refused(
    team: tuple[Services, dict[str, User]],
) -> None:
    """The pair was swapped silently: the answer ("1 -> 2: CONSISTENT") was to a question nobody asked."""
    svc, u = team
    checkpoints = svc.audit.checkpoints(u["aud"])
    first, later = checkpoints[0], checkpoints[-1]
    assert first.tree_size < later.tree_size
    with pytest.raises(InputError, match=f"checkpoint {later.checkpoint_id} .* is newer than") as info:
        svc.audit.consistency(u["aud"], later.checkpoint_id, first.checkpoint_id)
    assert f"consistency {first.checkpoint_id} {later.checkpoint_id}" in info.value.hint
    proof = svc.audit.consistency(u["aud"], first.checkpoint_id, later.checkpoint_id)
    assert proof.valid and (proof.old, proof.new) == (first, later)
    assert svc.audit.consistency(u["aud"], later.checkpoint_id, later.checkpoint_id).valid
    with pytest.raises(NotFoundError, match="there is no checkpoint 999999"):
        svc.audit.consistency(u["aud"], first.checkpoint_id, 999999)


def test_a_consistency_proof_over_a_truncated_ledger_is_invalid_not_a_crash(
    team: tuple[Services, dict[str, User]],
) -> None:
    svc, u = team
    checkpoints = svc.audit.checkpoints(u["aud"])
    first, later = checkpoints[1], checkpoints[-1]
    with raw_db(svc.ctx.data_dir) as db:  # an insider drops every entry after the first checkpoint's
        db.execute("DELETE FROM audit_entries WHERE seq > ?", (checkpoints[0].tree_size,))
        db.commit()
    assert not svc.audit.consistency(u["aud"], first.checkpoint_id, later.checkpoint_id).valid


def test_an_over_long_justification_is_refused_and_ledgered(team: tuple[Services, dict[str, User]]) -> None:
    svc, u = team
    entry = svc.watchlists.request(u["req"], STOLEN, plate="123ABC02")
    with pytest.raises(PolicyRefusal, match=f"more than the {MAX_JUSTIFICATION} allowed"):
        svc.watchlists.approve(u["appr"], entry, reason="report checked " + "x" * MAX_JUSTIFICATION)
    ((obj, why),) = _actions(svc, "watchlist.approve_refused")
    assert obj == f"watchlist:{entry}" and "more than the 2000 allowed" in why
    (shown,) = svc.watchlists.show(u["appr"])
    assert shown.status == "pending"
    with pytest.raises(PolicyRefusal, match="more than the 2000 allowed"):
        svc.retention.release(u["aud"], "CASE-1", reason="y" * 100_000)
    svc.watchlists.approve(u["appr"], entry, reason="  " + "z" * MAX_JUSTIFICATION + "  ")  # stripped, at the cap


def test_an_over_long_consent_is_refused_before_any_photo_is_read(
    team: tuple[Services, dict[str, User]], tmp_path: Path
) -> None:
    """A 100,000-character "consent" was stored; the photo is never opened (it does not even exist here)."""
    svc, u = team
    with pytest.raises(PolicyRefusal, match="consent record has 100000 characters, more than the 500"):
        svc.gallery.enroll(u["op"], "Aigerim", [tmp_path / "missing.jpg"], consent="x" * 100_000)
    ((obj, why),) = _actions(svc, "enrol.refused")
    assert obj == "person:Aigerim" and "reference of the signed consent form" in why
    assert svc.gallery.people(u["admin"]) == []


def test_the_same_watchlist_request_twice_is_refused_while_the_first_is_pending(
    team: tuple[Services, dict[str, User]],
) -> None:
    """Two identical pending requests asked approvers to decide the same thing twice (and could both be approved)."""
    svc, u = team
    entry = svc.watchlists.request(u["req"], STOLEN, plate="123ABC02")
    with pytest.raises(PolicyRefusal, match=f"already pending as entry {entry}") as info:
        svc.watchlists.request(u["req"], STOLEN, plate="123 abc 02")  # the same plate, as the reader cleans it
    assert f"kuzet watchlist withdraw {entry}" in info.value.hint
    assert [(o, w) for o, w in _actions(svc, "watchlist.refused")] == [
        ("watchlist-request:stolen", f"the same request is already pending as entry {entry}")
    ]
    assert [e.entry_id for e in svc.watchlists.show(u["appr"])] == [entry]
    # not the same request: another plate, another legal basis, another requester
    others = [
        svc.watchlists.request(u["req"], STOLEN, plate="777XYZ02"),
        svc.watchlists.request(u["req"], dataclasses.replace(STOLEN, reference="KUSP-9999"), plate="123ABC02"),
        svc.watchlists.request(u["req2"], STOLEN, plate="123ABC02"),
    ]
    assert len(set(others)) == 3
    # once the first is decided (or withdrawn), the request may be filed again
    svc.watchlists.reject(u["appr"], entry, reason="report KUSP-1234 not found")
    assert svc.watchlists.request(u["req"], STOLEN, plate="123ABC02") > max(others)


def test_an_over_long_watchlist_request_field_is_refused_and_the_ledger_keeps_only_its_start(
    team: tuple[Services, dict[str, User]],
) -> None:
    """The CLI took any length (the API's form had limits): a 100,000-character note or list name went to the
    approvers and, for the list name, into the ledger entry's object."""
    svc, u = team
    for field, length in (("note", 2001), ("reference", 201), ("list_name", 100_000)):
        req = dataclasses.replace(STOLEN, **{field: "x" * length})
        with pytest.raises(PolicyRefusal, match=f"{field} has {length} characters, more than the"):
            svc.watchlists.request(u["req"], req, plate="123ABC02")
    refused = _actions(svc, "watchlist.refused")
    assert len(refused) == 3 and all(len(obj) <= len("watchlist-request:") + 100 for obj, _ in refused)
    assert svc.watchlists.show(u["appr"]) == []  # nothing filed
    assert svc.watchlists.request(u["req"], dataclasses.replace(STOLEN, note="x" * 2000), plate="123ABC02") > 0


def test_a_subject_search_photo_that_cannot_be_read_is_reported_as_a_search(
    team: tuple[Services, dict[str, User]], tmp_path: Path
) -> None:
    """The error said "cannot enrol from ...": nobody was being enrolled."""
    svc, u = team
    photo = tmp_path / "asking.jpg"
    photo.write_bytes(b"not a picture")
    for attempt in (svc.subjects.search, svc.subjects.erase):
        with pytest.raises(InputError, match="cannot look for the person in .*asking.jpg") as info:
            attempt(u["aud"], photo, justification="access request 2026-17")
        assert "enrol" not in str(info.value)


def test_a_watchlist_photo_that_cannot_be_read_is_reported_as_a_watchlist_photo(
    team: tuple[Services, dict[str, User]], tmp_path: Path
) -> None:
    """The error said "cannot enrol from ...": a watchlist entry enrols nobody (and needs no consent)."""
    svc, u = team
    photo = tmp_path / "suspect.jpg"
    photo.write_bytes(b"not a picture")
    wanted = dataclasses.replace(STOLEN, category="wanted-person", legal_basis="court-order", list_name="wanted")
    with pytest.raises(EnrolmentError, match="cannot use .*suspect.jpg for a watchlist entry") as info:
        svc.watchlists.request(u["req"], wanted, photo)
    assert "enrol" not in str(info.value)
    assert svc.watchlists.show(u["appr"]) == []


def test_over_long_hold_and_review_texts_are_refused_and_ledgered(team: tuple[Services, dict[str, User]]) -> None:
    """A hold's case and reason, and a reviewer's reason, had no limit off the API (a 101-character case broke the
    PostgreSQL column with a database error)."""
    svc, u = team
    with pytest.raises(PolicyRefusal, match="case has 101 characters, more than the 100 allowed"):
        svc.retention.hold(u["admin"], "C" * 101, "event", 1, reason="court order 17")
    with pytest.raises(PolicyRefusal, match="reason has 2001 characters, more than the 2000 allowed"):
        svc.retention.hold(u["admin"], "CASE-1", "event", 1, reason="r" * 2001)
    reviewer = svc.users.add(u["admin"], "rev", PASSWORD, ["reviewer"])
    with pytest.raises(PolicyRefusal, match="reason has 2001 characters"):
        svc.review.decide(reviewer, 1, "confirm", reason="r" * 2001)
    assert [o for o, _ in _actions(svc, "hold.refused")] == ["event:1", "event:1"]
    assert [o for o, _ in _actions(svc, "review.refused")] == ["alert:1"]
    assert svc.retention.holds(u["admin"]) == []
