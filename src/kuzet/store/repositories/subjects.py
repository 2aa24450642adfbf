"""What is held about one data subject: their events, the watchlist entries that match them, and those alerts."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.store.models import AlertRow, EventRow, WatchlistEntryRow


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """A match event of the subject."""

    id: int
    camera: str
    start: float
    end: float
    source: str
    snapshot: str
    created_at: str


@dataclass(frozen=True, slots=True)
class HeldEntry:
    """A watchlist entry whose template matches the subject."""

    id: int
    list_name: str
    category: str
    legal_basis: str
    reference: str
    status: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class HeldAlert:
    """An alert of such an entry, with how many media files it keeps (best shots and their originals)."""

    id: int
    camera: str
    status: str
    start: float
    files: int


@dataclass(frozen=True, slots=True)
class Holdings:
    """Everything stored about one subject."""

    events: list[HeldEvent]
    entries: list[HeldEntry]
    alerts: list[HeldAlert]


class SubjectRepository:
    """Reads for subject access requests."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def holdings(self, person_ids: list[int], entry_ids: list[int]) -> Holdings:
        """The events of `person_ids`, the entries `entry_ids` and their alerts, oldest first."""
        s = self.session
        events = s.scalars(select(EventRow).where(EventRow.person_id.in_(person_ids)).order_by(EventRow.id))
        entries = s.scalars(
            select(WatchlistEntryRow).where(WatchlistEntryRow.id.in_(entry_ids)).order_by(WatchlistEntryRow.id)
        )
        alerts = s.scalars(select(AlertRow).where(AlertRow.entry_id.in_(entry_ids)).order_by(AlertRow.id))
        return Holdings(
            events=[
                HeldEvent(e.id, e.camera, e.start, e.end, e.source, e.snapshot, e.created_at.isoformat())
                for e in events
            ],
            entries=[
                HeldEntry(r.id, r.list_name, r.category, r.legal_basis, r.reference, r.status, r.expires_at.isoformat())
                for r in entries
            ],
            alerts=[HeldAlert(a.id, a.camera, a.status, a.start, 2 * len(json.loads(a.snapshots))) for a in alerts],
        )
