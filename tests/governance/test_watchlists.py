"""Every refusal path of the watchlist and review flow, at the service level."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kuzet.app import Kuzet
from kuzet.core.errors import PermissionDenied, PolicyRefusal
from kuzet.core.types import User
from kuzet.governance.watchlists import WatchlistRequest
from tests.conftest import add_user, enrol, utc_today

pytestmark = pytest.mark.store

EXAMPLES = "face_recognition_examples"


@pytest.fixture
def people(service: Kuzet) -> dict[str, User]:
    return {
        "req": add_user(service, "rustam", "requester"),
        "appr": add_user(service, "aigul", "approver"),
        "appr_req": add_user(service, "dana", "approver", "requester"),
        "rev1": add_user(service, "marat", "reviewer"),
        "rev2": add_user(service, "saule", "reviewer"),
        "op": add_user(service, "olga", "operator"),
        "aud": add_user(service, "timur", "auditor"),
    }


def _request(expires_in: int = 60, **changes: object) -> WatchlistRequest:
    """A lawful request, changed by `changes`; it expires `expires_in` days after the service's today (UTC), reckoned
    now: a date fixed when the module was imported is yesterday's once midnight passes during the run."""
    base = WatchlistRequest(
        list_name="wanted",
        subject_name="Lin-Manuel Miranda",
        category="wanted-person",
        legal_basis="court-order",
        reference="2-345/2026",
        authority="Almaty city court",
        expires=utc_today() + timedelta(days=expires_in),
        note="armed robbery suspect",
    )
    return dataclasses.replace(base, **changes)


def _refusals(svc: Kuzet, auditor: User) -> list[str]:
    return [e.justification for e in svc.audit_log(auditor, action="watchlist.refused")]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"category": "political-opinion"}, "prohibited (political opinion)"),
        ({"category": "trade-union-membership"}, "prohibited"),
        ({"category": "activists"}, "prohibited label"),
        ({"category": "suspicious-person"}, "not allowed"),
        ({"note": "civil activist and blogger"}, "prohibited label"),
        ({"note": "гражданский активист"}, "prohibited label"),
        ({"subject_name": "журналист Иванов"}, "prohibited label"),
        ({"list_name": "оппозиция"}, "prohibited label"),
        ({"note": "азаматтық белсенді"}, "prohibited label"),
        ({"reference": ""}, "legal basis"),
        ({"authority": " "}, "legal basis"),
        ({"legal_basis": "hunch"}, "not accepted"),
        ({"expires_in": 181}, "beyond the 180-day maximum"),
        ({"expires_in": 0}, "in the future"),
    ],
)
def test_requests_breaking_policy_are_refused_and_audited(
    service: Kuzet, people: dict[str, User], faces_dir: Path, changes: dict[str, object], fragment: str
) -> None:
    with pytest.raises(PolicyRefusal, match=re.escape(fragment)):
        service.watchlist_request(people["req"], _request(**changes), faces_dir / EXAMPLES / "lin-manuel-miranda.png")
    refusals = _refusals(service, people["aud"])
    assert len(refusals) == 1 and fragment.split("(")[0].strip() in refusals[0]
    assert service.watchlist_show(people["aud"]) == []  # nothing was stored


def test_approver_must_differ_from_requester(service: Kuzet, people: dict[str, User], faces_dir: Path) -> None:
    entry = service.watchlist_request(people["appr_req"], _request(), faces_dir / EXAMPLES / "lin-manuel-miranda.png")
    with pytest.raises(PolicyRefusal, match="cannot also approve"):
        service.watchlist_approve(people["appr_req"], entry, reason="court order checked")
    assert [e.action for e in service.audit_log(people["aud"], action="watchlist.approve_refused")]
    service.watchlist_approve(people["appr"], entry, reason="checked the court order")
    (shown,) = service.watchlist_show(people["aud"])
    assert shown.status == "approved" and shown.requester == "dana" and shown.approver == "aigul"


def test_a_copy_of_a_pending_face_request_is_refused_before_its_photo_is_described(
    service: Kuzet, people: dict[str, User], faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeated request cost a whole detector and embedder pass before the transaction refused it."""
    photo = faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    entry = service.watchlist_request(people["req"], _request(), photo)
    detector = service.ctx.models.face_detector
    passes: list[int] = []
    real = detector.detect
    monkeypatch.setattr(detector, "detect", lambda image: passes.append(1) or real(image))
    with pytest.raises(PolicyRefusal, match=f"already pending as entry {entry}"):
        service.watchlist_request(people["req"], _request(), photo)
    assert passes == [] and len(_refusals(service, people["aud"])) == 1
    # a changed request (another reference) is described and filed as before
    assert service.watchlist_request(people["req"], _request(reference="2-346/2026"), photo) > entry
    assert passes == [1]


def test_roles_gate_each_step(service: Kuzet, people: dict[str, User], faces_dir: Path) -> None:
    photo = faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    with pytest.raises(PermissionDenied):
        service.watchlist_request(people["op"], _request(), photo)
    entry = service.watchlist_request(people["req"], _request(), photo)
    with pytest.raises(PermissionDenied):
        service.watchlist_approve(people["req"], entry, reason="court order checked")
    with pytest.raises(PermissionDenied):
        service.review(people["op"], 1, "confirm", reason="x")


def test_rejection_destroys_template_and_photo(service: Kuzet, people: dict[str, User], faces_dir: Path) -> None:
    entry = service.watchlist_request(people["req"], _request(), faces_dir / EXAMPLES / "lin-manuel-miranda.png")
    (row,) = service.watchlist_show(people["aud"])
    photo = service.media.path(row.photo)
    assert photo.is_file()
    with pytest.raises(PolicyRefusal, match="needs a reason"):
        service.watchlist_reject(people["appr"], entry, reason=" ")
    service.watchlist_reject(people["appr"], entry, reason="the order was withdrawn")
    assert not photo.exists()
    assert len(service._load_gallery()) == 0
    with pytest.raises(PolicyRefusal, match="not pending"):
        service.watchlist_approve(people["appr"], entry, reason="court order checked")


@pytest.mark.slow
def test_hit_waits_for_two_reviewers_and_expired_entries_stop_matching(
    service: Kuzet, people: dict[str, User], faces_dir: Path, video_dir: Path
) -> None:
    entry = service.watchlist_request(
        people["req"], _request(expires_in=10), faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    )
    result = service.analyze(people["op"], str(video_dir / "short_hamilton_clip.mp4"), camera="stage", fps=10)
    assert result.alert_ids == []  # a request matches nothing until approved
    service.watchlist_approve(people["appr"], entry, reason="court order checked")
    result = service.analyze(people["op"], str(video_dir / "short_hamilton_clip.mp4"), camera="stage", fps=10)
    assert result.alert_ids and result.events == []  # a watchlist hit is an alert, not an event
    alert_id = result.alert_ids[0]
    (alert,) = [a for a in service.review_list(people["rev1"]) if a.alert_id == alert_id]
    assert alert.status == "pending" and alert.required_reviews == 2
    assert alert.score >= alert.threshold == service.policy.threshold("wanted-person")
    assert alert.false_match_rate == 0.001  # the rate the category declares, from which the threshold is derived
    assert alert.legal_basis == "court-order" and alert.reference == "2-345/2026"
    assert alert.snapshots and all(service.media.path(p).is_file() for p in alert.snapshots)
    assert service.media.path(alert.enrolled_photo).is_file()

    assert service.review(people["rev1"], alert_id, "confirm", reason="same face and ears") == "pending"
    with pytest.raises(PolicyRefusal, match="already reviewed"):
        service.review(people["rev1"], alert_id, "confirm", reason="really sure")
    assert [e.action for e in service.audit_log(people["aud"], action="review.refused")] == ["review.refused"]
    assert service.review(people["rev2"], alert_id, "confirm", reason="agree") == "confirmed"

    # Eleven days later the entry has expired: it stops matching and its template and photo are destroyed.
    later = datetime.now(UTC) + timedelta(days=11)
    service.now = lambda: later
    result = service.analyze(people["op"], str(video_dir / "short_hamilton_clip.mp4"), camera="stage", fps=10)
    assert result.alert_ids == []
    (shown,) = service.watchlist_show(people["aud"])
    assert shown.status == "expired" and shown.photo == ""
    assert not service.media.path(alert.enrolled_photo).exists()
    assert [e.object for e in service.audit_log(people["aud"], action="watchlist.expired")] == [f"watchlist:{entry}"]
    assert service.audit_verify(people["aud"]).ok


def test_expired_entry_never_matches_even_before_the_purge(
    service: Kuzet, people: dict[str, User], faces_dir: Path
) -> None:
    """Matching itself filters on expiry, so an entry cannot match between its expiry and the next purge."""
    entry = service.watchlist_request(
        people["req"], _request(expires_in=1), faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    )
    service.watchlist_approve(people["appr"], entry, reason="court order checked")
    assert len(service._load_gallery().people) == 1
    later = datetime.now(UTC) + timedelta(days=2)
    service.now = lambda: later
    assert service._load_gallery().people == []


def test_enrolment_is_audited_with_consent(service: Kuzet, people: dict[str, User], faces_dir: Path) -> None:
    enrol(service, people["op"], "Staff Member", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"], consent="form 17")
    (entry,) = service.audit_log(people["aud"], action="enrol")
    assert entry.actor == "olga" and entry.justification == "form 17" and entry.details["basis"] == "consent"
    with pytest.raises(PolicyRefusal, match="prohibited label"):
        enrol(service, people["op"], "blogger Ivanov", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"])


def test_entry_expiring_while_a_camera_runs_gives_no_alert(
    service: Kuzet, people: dict[str, User], faces_dir: Path, video_dir: Path
) -> None:
    """A live camera loaded its gallery before the expiry: the decision itself checks the entry is still in force."""
    from kuzet.ingest.sources import open_source
    from kuzet.services.session import AnalysisSession

    entry = service.watchlist_request(
        people["req"], _request(expires_in=1), faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    )
    service.watchlist_approve(people["appr"], entry, reason="court order checked")
    session = AnalysisSession(service.services.analysis, people["op"], camera="stage", source="clip", live=True)
    assert session.gallery_people == 1
    later = datetime.now(UTC) + timedelta(days=2)
    expired_at = None
    with open_source(str(video_dir / "short_hamilton_clip.mp4"), fps=10) as frames:
        for i, frame in enumerate(frames):
            if i == 30:  # mid-stream, the entry expires
                service.now = lambda: later
                expired_at = frame.pts
            session.process(frame)
    session.finish()
    stored = session.commit()
    assert expired_at is not None and session.expired_hits >= 1
    # tracks decided while the entry was in force may alert; none decided after its expiry does
    assert all(a.end < expired_at for a in stored.alerts)
    session.reload_gallery()
    assert session.gallery_people == 0


def test_reasons_and_consent_are_screened_and_refusals_audited(
    service: Kuzet, people: dict[str, User], faces_dir: Path
) -> None:
    entry = service.watchlist_request(people["req"], _request(), faces_dir / EXAMPLES / "lin-manuel-miranda.png")
    with pytest.raises(PolicyRefusal, match="prohibited label 'activist'"):
        service.watchlist_approve(people["appr"], entry, reason="a known civil act\u200bivist")
    with pytest.raises(PolicyRefusal, match="prohibited label 'journalist'"):
        service.watchlist_reject(people["appr"], entry, reason="jour\u00adnalist, not wanted")
    with pytest.raises(PolicyRefusal, match="prohibited label"):
        enrol(
            service, people["op"], "Staff Member", [faces_dir / EXAMPLES / "lin-manuel-miranda.png"], consent="ɑctivist"
        )
    refused = [
        e.action for e in service.audit_log(people["aud"]) if e.action.endswith("_refused") or "refused" in e.action
    ]
    assert refused == ["watchlist.approve_refused", "watchlist.reject_refused", "enrol.refused"]
    (row,) = service.watchlist_show(people["aud"], status="pending")
    assert row.entry_id == entry  # nothing was decided
