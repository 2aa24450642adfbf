"""Stored match events and traffic records, read with an audit entry for every look."""

from __future__ import annotations

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
        with self.uow.tx() as w:
            rows = w.events.list(camera=camera, identity=identity, limit=limit, offset=offset, since=since, until=until)
            details = {"camera": camera, "identity": identity, "count": len(rows)}
            w.audit(actor, "events.view", justification=justification, details=details)
        return rows

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
        if kind not in ("passages", "violations"):
            raise InputError(f"no traffic records of kind {kind!r}", hint="passages or violations")
        self.uow.require(actor, f"traffic.{kind}")
        with self.uow.tx() as w:
            rows = w.traffic.list(
                kind, camera=camera, plate=clean_plate(plate) if plate else None, limit=limit, offset=offset
            )
            out = [views.traffic_record(r) for r in rows]
            details = {"camera": camera, "plate_searched": bool(plate), "count": len(out)}
            w.audit(actor, f"traffic.{kind}.view", details=details)
        return out

    def event_json(self, event: Event) -> dict[str, object]:
        """An event as the JSON object the CLI and API return."""
        return views.event(event, self.ctx.media)
