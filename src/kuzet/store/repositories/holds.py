"""Legal holds and time-limited grants of unredacted access."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.core.errors import NotFoundError
from kuzet.core.timeutil import aware
from kuzet.store.models import (
    AccessGrantRow,
    AlertRow,
    Base,
    EventRow,
    HoldRow,
    PersonRow,
    ViolationRow,
    WatchlistEntryRow,
)

_HELD_ROWS: dict[str, type[Base]] = {
    "event": EventRow,
    "alert": AlertRow,
    "person": PersonRow,
    "watchlist": WatchlistEntryRow,
    "violation": ViolationRow,
}
"""The table of each kind of record a hold can keep."""


@dataclass(frozen=True, slots=True)
class Hold:
    """An active legal hold."""

    id: int
    case: str
    object_type: str
    object_id: int
    reason: str


class HoldRepository:
    """Legal holds: what a case keeps, whatever retention says."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, case: str, object_type: str, object_id: int, *, reason: str, user_id: int, now: datetime) -> int:
        """Place a hold; returns its id.

        Raises:
            NotFoundError: There is no such record (a mistyped id would hold nothing and leave the real record to
                retention).
        """
        table = _HELD_ROWS.get(object_type)
        if table is None or self.session.get(table, object_id) is None:
            raise NotFoundError(
                f"there is no {object_type} {object_id} to hold", hint="check the id (kuzet events, people, ...)"
            )
        row = HoldRow(
            case_ref=case,
            object_type=object_type,
            object_id=object_id,
            reason=reason,
            created_by=user_id,
            created_at=now,
            released_at=None,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def release(self, case: str, *, now: datetime) -> int:
        """Release every active hold of a case; returns how many."""
        rows = list(
            self.session.scalars(select(HoldRow).where(HoldRow.case_ref == case, HoldRow.released_at.is_(None)))
        )
        for r in rows:
            r.released_at = now
        return len(rows)

    def active(self) -> list[Hold]:
        """Every active hold, oldest first."""
        rows = self.session.scalars(select(HoldRow).where(HoldRow.released_at.is_(None)).order_by(HoldRow.id))
        return [Hold(r.id, r.case_ref, r.object_type, r.object_id, r.reason) for r in rows]


class GrantRepository:
    """Time-limited grants to see unredacted media."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, user_id: int, *, granted_by: int, justification: str, now: datetime, until: datetime) -> None:
        """Grant `user_id` unredacted access until `until`."""
        self.session.add(
            AccessGrantRow(
                user_id=user_id, granted_by=granted_by, justification=justification, created_at=now, expires_at=until
            )
        )

    def active(self, user_id: int, *, now: datetime) -> bool:
        """Whether `user_id` holds a grant that has not run out."""
        grants = self.session.scalars(select(AccessGrantRow.expires_at).where(AccessGrantRow.user_id == user_id))
        return any(aware(until) > now for until in grants)
