"""Every JSON shape kuzet gives out: events, alerts, people, users, watchlist entries, passages and violations.

The CLI, the API, the dashboard and the integrations all take their JSON from here, so one record has one shape per
surface and a change to a shape is made (and reviewed) in one place. Stored traffic records, a traffic analysis'
summary and the notices sent to MQTT and webhooks keep the field names their users already rely on: `time_s`,
`rule` and `where` for people reading records; `at`, `kind` and `place` in the integrations' payloads.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from kuzet.analytics.traffic import Passage
from kuzet.core.types import Event, JsonValue, User
from kuzet.governance.review import Alert, WrongMatchMark
from kuzet.store.media import MediaStore
from kuzet.store.repositories.gallery import PersonSummary
from kuzet.store.repositories.holds import Hold
from kuzet.store.repositories.subjects import Holdings
from kuzet.store.repositories.traffic import PassageRecord, StoredViolation, ViolationRecord

if TYPE_CHECKING:
    from kuzet.services.analysis import TrafficResult
    from kuzet.services.session import Committed, StoredAlert

Json = dict[str, object]


def user(u: User) -> Json:
    """A user: id, name and roles."""
    return {"id": u.user_id, "name": u.name, "roles": sorted(u.roles)}


def event(e: Event, media: MediaStore) -> Json:
    """A match event as `kuzet analyze --json` and `kuzet events --json` write it (the snapshot as a file path)."""
    return _event(e, "snapshot", str(media.path(e.snapshot)) if e.snapshot else "")


def event_for_api(e: Event, media: MediaStore) -> Json:
    """A match event as the API returns it: the snapshot as a URL of the (audited) media route."""
    return _event(e, "snapshot_url", f"/api/media/event/{e.event_id}")


def _event(e: Event, snapshot_key: str, snapshot: str) -> Json:
    out: Json = {
        "id": e.event_id,
        "camera": e.camera,
        "identity": e.identity,
        "score": e.score,
        "start": e.start,
        "end": e.end,
        "track_id": e.track_id,
        snapshot_key: snapshot,
        "run_id": e.run_id,
        "source": e.source,
        "created_at": e.created_at,
    }
    if snapshot_key != "snapshot":  # the API's key order: the URL last (as before)
        out[snapshot_key] = out.pop(snapshot_key)
    return out


def alert_for_api(a: Alert) -> Json:
    """An alert for reviewers and auditors: its best shots as URLs of the (audited) media route."""
    out = asdict(a)
    out["snapshot_urls"] = [f"/api/media/alert/{a.alert_id}?index={i}" for i in range(len(a.snapshots))]
    out.pop("snapshots")
    out.pop("enrolled_photo")
    return out


def mark_for_api(m: WrongMatchMark) -> Json:
    """A wrong-match mark with its status (`pending` until a second person approves it); never its descriptors."""
    return asdict(m) | {"status": m.status}


def person(p: PersonSummary) -> Json:
    """An enrolment as the API and dashboard show it (never its templates)."""
    return {
        "id": p.identity.person_id,
        "name": p.identity.name,
        "status": p.status,
        "templates": p.templates,
        "consent": p.consent,
        "scope": p.scope,
        "expires": p.expires_at,
        "enrolled": p.created_at,
        "decision_reason": p.decision_reason,
        "photo_urls": [f"/api/media/person/{p.identity.person_id}?index={i}" for i in range(p.photos)],
    }


def _passage_fields(p: Passage) -> Json:
    return {
        "time_s": p.pts,
        "line": p.line,
        "direction": p.direction,
        "object": p.label,
        "track_id": p.track_id,
        "speed_kmh": p.speed_kmh,
        "speed_uncertainty_kmh": p.speed_err_kmh,
        "plate": p.plate,
    }


def _violation_fields(v: StoredViolation | ViolationRecord) -> Json:
    return {
        "rule": v.kind,
        "where": v.place,
        "time_s": v.at,
        "plate": v.plate,
        "measurements": v.measurements,
        "evidence": v.evidence,
        "evidence_sha256": v.evidence_sha256,
    }


def traffic_record(r: PassageRecord | ViolationRecord) -> Json:
    """A stored passage or violation (`kuzet traffic`-style listings and GET /api/traffic/...)."""
    common: Json = {
        "id": r.id,
        "run_id": r.run_id,
        "camera": r.camera,
        "track_id": r.track_id,
        "time_s": r.at,
        "plate": r.plate,
        "created_at": r.created_at,
    }
    if isinstance(r, PassageRecord):
        return common | {
            "line": r.line,
            "direction": r.direction,
            "object": r.label,
            "speed_kmh": r.speed_kmh,
            "speed_uncertainty_kmh": r.speed_err_kmh,
        }
    return common | {k: v for k, v in _violation_fields(r).items() if k not in common}


def traffic_result(t: TrafficResult) -> Json:
    """What one traffic analysis counted and found (`kuzet analyze --traffic-json`)."""
    return {
        "per_line": t.per_line,
        "calibration": t.calibration_note,
        "passages": [_passage_fields(p) for p in t.passages],
        "violations": [{"id": v.id} | _violation_fields(v) for v in t.violations],
        "stats": {"frames": t.stats.frames, "tracks": t.stats.tracks, "plates_read": t.stats.plates_read},
    }


def notices(stored: Committed) -> list[tuple[str, dict[str, JsonValue]]]:
    """What integrations are told about one commit of a live camera: (kind, payload) in order.

    An alert names nobody (people confirm it first); identities and plates are dropped later unless an
    integration's config includes them.
    """
    run = stored.run_id
    out: list[tuple[str, dict[str, JsonValue]]] = []
    out += [("event", _event_notice(e, run)) for e in stored.events]
    out += [("alert", _alert_notice(a, run)) for a in stored.alerts]
    out += [("passage", _passage_notice(p, run)) for p in stored.passages]
    out += [("violation", _violation_notice(v, run)) for v in stored.violations]
    return out


def _event_notice(e: Event, run: int) -> dict[str, JsonValue]:
    return {"id": e.event_id, "identity": e.identity, "score": e.score, "start": e.start, "end": e.end, "run": run,
            "at": e.created_at}  # fmt: skip


def _alert_notice(a: StoredAlert, run: int) -> dict[str, JsonValue]:
    return {"id": a.id, "status": "pending-review", "score": a.score, "start": a.start, "end": a.end,
            "required_reviews": a.required_reviews, "run": run}  # fmt: skip


def _passage_notice(p: Passage, run: int) -> dict[str, JsonValue]:
    return {"line": p.line, "direction": p.direction, "label": p.label, "at": p.pts, "speed_kmh": p.speed_kmh,
            "speed_err_kmh": p.speed_err_kmh, "plate": p.plate, "run": run}  # fmt: skip


def _violation_notice(v: StoredViolation, run: int) -> dict[str, JsonValue]:
    measurements: dict[str, JsonValue] = {
        k: m for k, m in v.measurements.items() if isinstance(m, str | int | float | bool)
    }
    return {"id": v.id, "kind": v.kind, "place": v.place, "at": v.at, "plate": v.plate, "measurements": measurements,
            "evidence_sha256": v.evidence_sha256, "run": run}  # fmt: skip


def subject_report(people: list[tuple[int, str, float]], held: Holdings) -> Json:
    """What kuzet holds about one data subject (`kuzet subject search`)."""
    return {
        "people": [{"person_id": i, "name": n, "score": round(sc, 4)} for i, n, sc in people],
        "events": [
            {
                "id": e.id,
                "camera": e.camera,
                "start": e.start,
                "end": e.end,
                "source": e.source,
                "snapshot": e.snapshot,
                "created_at": e.created_at,
            }
            for e in held.events
        ],
        "watchlist_entries": [
            {
                "id": r.id,
                "list": r.list_name,
                "category": r.category,
                "legal_basis": r.legal_basis,
                "reference": r.reference,
                "status": r.status,
                "expires_at": r.expires_at,
            }
            for r in held.entries
        ],
        "alerts": [{"id": a.id, "camera": a.camera, "status": a.status, "start": a.start} for a in held.alerts],
        "media_files": 2 * len(held.events) + sum(a.files for a in held.alerts),
    }


def hold(h: Hold) -> Json:
    """A legal hold: id, case, the object held and why."""
    return {"id": h.id, "case": h.case, "object": f"{h.object_type}:{h.object_id}", "reason": h.reason}
