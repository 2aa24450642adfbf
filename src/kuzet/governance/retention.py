"""Retention: what is due for deletion, legal holds that keep it, and the media size cap."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kuzet.core.timeutil import aware
from kuzet.governance.policy import RetentionPolicy
from kuzet.store.media import MediaStore
from kuzet.store.models import AlertRow, EventRow, HoldRow, PassageRow, ReviewRow, ViolationRow

HOLD_TYPES = ("event", "alert", "person", "watchlist", "violation")


@dataclass(slots=True)
class PurgeReport:
    """What one purge removed (counts only: the ledger records these, never names)."""

    events: int = 0
    unconfirmed_alerts: int = 0
    confirmed_alerts: int = 0
    recordings: int = 0
    passages: int = 0
    violations: int = 0
    over_cap: int = 0
    files: int = 0
    bytes_freed: int = 0
    kept_on_hold: int = 0
    media_bytes: int = 0
    skipped: list[str] = field(default_factory=list)

    def details(self) -> dict[str, str | int | float | bool | None]:
        """The counts, for the ledger."""
        return {
            "events": self.events,
            "unconfirmed_alerts": self.unconfirmed_alerts,
            "confirmed_alerts": self.confirmed_alerts,
            "recordings": self.recordings,
            "passages": self.passages,
            "violations": self.violations,
            "over_cap": self.over_cap,
            "files": self.files,
            "bytes_freed": self.bytes_freed,
            "kept_on_hold": self.kept_on_hold,
        }


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
    session.delete(row)


def purge(session: Session, media: MediaStore, policy: RetentionPolicy, now: datetime) -> PurgeReport:
    """Delete what retention says is due, except what a legal hold keeps; then enforce the media size cap."""
    report = PurgeReport()
    held = HeldSet(session)
    event_cutoff = now - timedelta(days=policy.event_snapshots_days)
    for ev in session.scalars(select(EventRow).where(EventRow.created_at < event_cutoff)):
        if held.event(ev):
            report.kept_on_hold += 1
            continue
        delete_event(session, media, ev, report)
        report.events += 1
    unconfirmed_cutoff = now - timedelta(days=policy.unconfirmed_alerts_days)
    confirmed_cutoff = now - timedelta(days=policy.confirmed_evidence_days)
    for al in list(session.scalars(select(AlertRow))):
        created = aware(al.created_at)
        due = created < confirmed_cutoff if al.status == "confirmed" else created < unconfirmed_cutoff
        if not due:
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
    recordings = media.root / "recordings"
    if recordings.is_dir():
        cutoff_ts = (now - timedelta(days=policy.recordings_days)).timestamp()
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
