"""The outbox: notices for the integrations, stored with the decision they announce, and each destination's cursor.

A live camera's commit writes its notices here in the same transaction as its events, alerts, passages and
violations; `kuzet run` delivers them from here (see `runtime.outbox`). Every write transaction holds the one write
lock, so outbox ids become visible in increasing order: a destination's cursor (the last id it received) never
skips a row that commits later.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kuzet.core.types import JsonValue
from kuzet.store.models import OutboxCursorRow, OutboxRow


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored notice; `delivery_id` is the same on every attempt, for receivers to drop repeats."""

    id: int
    delivery_id: str
    kind: str
    camera: str
    data: dict[str, JsonValue]


class OutboxRepository:
    """Notices waiting for delivery and how far each destination has received them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, kind: str, camera: str, data: dict[str, JsonValue], *, now: datetime) -> None:
        """Store a notice (in the caller's transaction)."""
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self.session.add(
            OutboxRow(delivery_id=uuid.uuid4().hex, kind=kind, camera=camera, payload=payload, created_at=now)
        )

    def after(self, last_id: int, *, limit: int = 500) -> list[OutboxItem]:
        """Notices with an id above `last_id`, oldest first."""
        rows = self.session.scalars(select(OutboxRow).where(OutboxRow.id > last_id).order_by(OutboxRow.id).limit(limit))
        return [OutboxItem(r.id, r.delivery_id, r.kind, r.camera, json.loads(r.payload)) for r in rows]

    def head(self) -> int:
        """The newest notice's id (0 when the outbox was always empty and nothing was ever delivered)."""
        stored = self.session.scalar(select(func.max(OutboxRow.id))) or 0
        passed = self.session.scalar(select(func.max(OutboxCursorRow.last_id))) or 0
        return max(int(stored), int(passed))

    def cursors(self) -> dict[str, int]:
        """Destination -> the last id it received."""
        return {r.destination: r.last_id for r in self.session.scalars(select(OutboxCursorRow))}

    def advance(self, destination: str, last_id: int, *, now: datetime) -> None:
        """Record that `destination` received everything up to `last_id` (never moves a cursor back)."""
        row = self.session.get(OutboxCursorRow, destination)
        if row is None:
            self.session.add(OutboxCursorRow(destination=destination, last_id=last_id, updated_at=now))
        elif last_id > row.last_id:
            row.last_id, row.updated_at = last_id, now

    def trim(self, destinations: list[str]) -> int:
        """Delete the notices every one of `destinations` has received; returns how many."""
        if not destinations:
            return 0
        cursors = self.cursors()
        if any(d not in cursors for d in destinations):
            return 0
        upto = min(cursors[d] for d in destinations)
        result = self.session.execute(delete(OutboxRow).where(OutboxRow.id <= upto))
        return int(getattr(result, "rowcount", 0) or 0)

    def older_than(self, cutoff: datetime) -> int:
        """Delete notices stored before `cutoff`, delivered or not (retention); returns how many."""
        result = self.session.execute(delete(OutboxRow).where(OutboxRow.created_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)
