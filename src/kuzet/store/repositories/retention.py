"""Retention carried out: held records kept, due records and their media deleted, the media size cap enforced."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kuzet.core.timeutil import aware
from kuzet.governance.policy import RetentionPolicy
from kuzet.governance.retention import HOLD_TYPES, PurgeReport, cutoffs
from kuzet.store.media import MediaStore
from kuzet.store.models import AlertRow, EventRow, HoldRow, PassageRow, PersonRow, ReviewRow, ViolationRow
from kuzet.store.repositories.alerts import AlertRepository
from kuzet.store.repositories.changes import ChangeFeed
from kuzet.store.repositories.outbox import OutboxRepository


class HeldSet:
    """Objects under an active legal hold."""

    def __init__(self, session: Session) -> None:
        rows = session.scalars(select(HoldRow).where(HoldRow.released_at.is_(None)))
        self.ids: dict[str, set[int]] = {t: set() for t in HOLD_TYPES}
        for r in rows:
            self.ids.setdefault(r.object_type, set()).add(r.object_id)

    def event(self, row: EventRow) -> bool:
        """Whether an event is held (itself, or its person)."""
        return row.id in self.ids["event"] or row.person_id in self.ids["person"]

    def alert(self, row: AlertRow) -> bool:
        """Whether an alert is held (itself, or its watchlist entry)."""
        return row.id in self.ids["alert"] or row.entry_id in self.ids["watchlist"]


def _delete_files(media: MediaStore, paths: list[str], report: PurgeReport) -> None:
    for rel in paths:
        if not rel:
            continue
        path = media.path(rel)
        if path.exists():
            report.bytes_freed += path.stat().st_size
            path.unlink()
            report.files += 1


def delete_event(session: Session, media: MediaStore, row: EventRow, report: PurgeReport) -> None:
    """Remove an event and its media."""
    _delete_files(media, [row.snapshot, row.original], report)
    session.delete(row)


def delete_alert(session: Session, media: MediaStore, row: AlertRow, report: PurgeReport) -> None:
    """Remove an alert, its reviews and its media."""
    _delete_files(media, [*json.loads(row.snapshots), *json.loads(row.originals)], report)
    session.execute(delete(ReviewRow).where(ReviewRow.alert_id == row.id))
    AlertRepository(session).forget_appearance(row.id)  # a wrong match's stays until its entry ends
    session.delete(row)


def purge(session: Session, media: MediaStore, policy: RetentionPolicy, now: datetime) -> PurgeReport:
    """Delete what retention says is due, except what a legal hold keeps; then enforce the media size cap."""
    report = PurgeReport()
    held = HeldSet(session)
    due = cutoffs(policy, now)
    event_cutoff = due.events
    for ev in session.scalars(select(EventRow).where(EventRow.created_at < event_cutoff)):
        if held.event(ev):
            report.kept_on_hold += 1
            continue
        delete_event(session, media, ev, report)
        report.events += 1
    unconfirmed_cutoff, confirmed_cutoff = due.unconfirmed_alerts, due.confirmed_evidence
    for al in list(session.scalars(select(AlertRow))):
        created = aware(al.created_at)
        expired = created < confirmed_cutoff if al.status == "confirmed" else created < unconfirmed_cutoff
        if not expired:
            continue
        if held.alert(al):
            report.kept_on_hold += 1
            continue
        if al.status == "confirmed":
            report.confirmed_alerts += 1
        else:
            report.unconfirmed_alerts += 1
        delete_alert(session, media, al, report)
    # traffic passages carry plates: they go with event snapshots; violations and their evidence with evidence
    for pa in list(session.scalars(select(PassageRow).where(PassageRow.created_at < event_cutoff))):
        session.delete(pa)
        report.passages += 1
    for vi in list(session.scalars(select(ViolationRow).where(ViolationRow.created_at < confirmed_cutoff))):
        if vi.id in held.ids["violation"]:
            report.kept_on_hold += 1
            continue
        folder = media.path(vi.evidence)
        if folder.is_dir():
            for f in folder.iterdir():
                report.bytes_freed += f.stat().st_size
                report.files += 1
                f.unlink()
            folder.rmdir()
        session.delete(vi)
        report.violations += 1
    # notices carry identities and plates too: undelivered ones go with the events they announced
    report.notices = OutboxRepository(session).older_than(event_cutoff)
    ChangeFeed(session).trim()
    recordings = media.root / "recordings"
    if recordings.is_dir():
        cutoff_ts = due.recordings.timestamp()
        for path in recordings.rglob("*"):
            if path.is_file() and path.stat().st_mtime < cutoff_ts:
                report.bytes_freed += path.stat().st_size
                path.unlink()
                report.recordings += 1
                report.files += 1
    session.flush()
    cap = policy.media_cap_mb * 1024 * 1024
    total = media.total_bytes()
    if total > cap:
        # Oldest first, events and alerts together, never what is held.
        items: list[tuple[datetime, EventRow | AlertRow]] = [
            (aware(e.created_at), e) for e in session.scalars(select(EventRow)) if not held.event(e)
        ]
        items += [(aware(a.created_at), a) for a in session.scalars(select(AlertRow)) if not held.alert(a)]
        for _, item in sorted(items, key=lambda t: (t[0], t[1].id)):
            if total <= cap:
                break
            before = report.bytes_freed
            if isinstance(item, EventRow):
                delete_event(session, media, item, report)
            else:
                delete_alert(session, media, item, report)
            total -= report.bytes_freed - before
            report.over_cap += 1
        session.flush()
    report.media_bytes = media.total_bytes()
    return report


def erase_person(
    session: Session, media: MediaStore, person_id: int, report: PurgeReport
) -> tuple[int, bool, list[str]]:
    """Erase a person's events (and media) and then the person, except what a legal hold keeps.

    Returns:
        Events erased, whether the person record went too, and what was kept and why.
    """
    held = HeldSet(session)
    if person_id in held.ids["person"]:
        return 0, False, [f"person {person_id}: under legal hold"]
    kept, erased = [], 0
    for ev in list(session.scalars(select(EventRow).where(EventRow.person_id == person_id))):
        if held.event(ev):
            kept.append(f"event {ev.id}: under legal hold")
            continue
        delete_event(session, media, ev, report)
        erased += 1
    session.flush()
    if kept:
        return erased, False, kept  # held events still point at the person
    person = session.get(PersonRow, person_id)
    if person is None:
        return erased, False, kept
    session.delete(person)
    ChangeFeed(session).note(f"person:{person_id}")
    return erased, True, kept
