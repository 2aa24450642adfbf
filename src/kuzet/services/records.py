"""Stored match events and traffic records, read with an audit entry for every look."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from kuzet.core.errors import InputError
from kuzet.core.types import Event, User
from kuzet.detect.plate.formats import clean as clean_plate
from kuzet.services import views
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork


class RecordService:
    """Events and traffic passages and violations."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def events(
        self,
        actor: User,
        *,
        camera: str | None = None,
        identity: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
        justification: str = "",
    ) -> list[Event]:
        """Stored events, newest first; viewing them is audited."""
        self.uow.require(actor, "events.view")
        with self.uow.read() as r:
            rows = r.events.list(camera=camera, identity=identity, limit=limit, offset=offset, since=since, until=until)
        details = {"camera": camera, "identity": identity, "count": len(rows)}
        self.uow.record(actor, "events.view", justification=justification, details=details)
        return rows

    def export_events(
        self,
        actor: User,
        *,
        justification: str,
        camera: str | None = None,
        identity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> str:
        """Events as CSV (no pictures), for a written reason; the export and its filters are audited."""
        self.uow.require(actor, "events.view")
        why = self.uow.justified(
            actor, "events.export_refused", justification, object="events",
            reason="an export needs a written justification", hint="say why, e.g. the case or request number",
        )  # fmt: skip
        self.uow.screen(actor, "events.export_refused", "events", {"justification": why})
        with self.uow.read() as r:
            rows = r.events.list(camera=camera, identity=identity, limit=limit, offset=0, since=since, until=until)
        details = {"camera": camera, "identity": identity, "count": len(rows), "format": "csv"}
        self.uow.record(actor, "events.export", justification=why, details=details)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["event_id", "camera", "identity", "score", "start_s", "end_s", "stored_at"])
        for e in rows:
            writer.writerow([e.event_id, e.camera, _cell(e.identity), f"{e.score:.4f}", e.start, e.end, e.created_at])
        return out.getvalue()

    def traffic(
        self,
        actor: User,
        kind: str,
        *,
        camera: str | None = None,
        plate: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, object]]:
        """Stored passages or violations (`kind`), newest first; viewing them is audited (plates are personal)."""
        known = kind in ("passages", "violations")
        self.uow.require(actor, f"traffic.{kind}" if known else "traffic.passages")  # who asks first, then what
        if not known:
            raise InputError(f"no traffic records of kind {kind!r}", hint="passages or violations")
        # A plate that cleans to nothing ("---") matches nothing; no plate given means every plate.
        wanted = clean_plate(plate) if plate else None
        with self.uow.read() as r:
            out = [
                views.traffic_record(row)
                for row in r.traffic.list(kind, camera=camera, plate=wanted, limit=limit, offset=offset)
            ]
        details = {"camera": camera, "plate_searched": bool(plate), "count": len(out)}
        self.uow.record(actor, f"traffic.{kind}.view", details=details)
        return out

    def event_json(self, event: Event) -> dict[str, object]:
        """An event as the JSON object the CLI and API return."""
        return views.event(event, self.ctx.media)


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (a name may start with = + - @)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
