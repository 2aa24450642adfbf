"""Stored match events and traffic records, read with an audit entry for every look."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta

from kuzet.audit.ledger import Details
from kuzet.core.errors import InputError, StoreError
from kuzet.core.i18n import Phrase
from kuzet.core.types import Event, User
from kuzet.detect.plate.formats import clean as clean_plate
from kuzet.detect.plate.formats import near
from kuzet.services import views
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.store.evidence import verify_evidence
from kuzet.store.repositories.events import list_events


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
        rows = list_events(
            self.ctx.db, camera=camera, identity=identity, limit=limit, offset=offset, since=since, until=until
        )
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
            reason=Phrase("an export needs a written justification"), hint="say why, e.g. the case or request number",
        )  # fmt: skip
        self.uow.screen(actor, "events.export_refused", "events", {"justification": why})
        rows = list_events(self.ctx.db, camera=camera, identity=identity, limit=limit, since=since, until=until)
        details = {"camera": camera, "identity": identity, "count": len(rows), "format": "csv"}
        self.uow.record(actor, "events.export", justification=why, details=details)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["event_id", "camera", "identity", "score", "start_s", "end_s", "stored_at"])
        for e in rows:
            writer.writerow([e.event_id, e.camera, _cell(e.identity), f"{e.score:.4f}", e.start, e.end, e.created_at])
        return out.getvalue()

    def event(self, actor: User, event_id: int) -> Event:
        """One stored event, for its detail page (audited)."""
        self.uow.require(actor, "events.view")
        with self.uow.read() as r:
            found = r.events.get(event_id)
        self.uow.record(actor, "events.view", object=f"event:{event_id}", details={"count": 1})
        return found

    def recognitions(self, actor: User) -> dict[int, dict[str, object]]:
        """Per enrolled person: stored match events and the latest one (counts and a time; audited)."""
        self.uow.require(actor, "events.view")
        with self.uow.read() as r:
            found = r.events.recognitions()
        self.uow.record(actor, "events.view", details={"recognitions_of": len(found)})
        return {p: {"count": n, "last": last.isoformat()} for p, (n, last) in found.items()}

    def traffic(
        self,
        actor: User,
        kind: str,
        *,
        camera: str | None = None,
        plate: str | None = None,
        limit: int = 100,
        offset: int = 0,
        fuzzy: bool = False,
    ) -> list[dict[str, object]]:
        """Stored passages or violations (`kind`), newest first; viewing them is audited (plates are personal).

        `fuzzy` finds plates read with O/0, I/1 and similar mixed up, or one character off (`formats.near`).
        """
        known = kind in ("passages", "violations")
        self.uow.require(actor, f"traffic.{kind}" if known else "traffic.passages")  # who asks first, then what
        if not known:
            raise InputError(f"no traffic records of kind {kind!r}", hint="passages or violations")
        # A plate that cleans to nothing ("---") matches nothing; no plate given means every plate.
        wanted: str | list[str] | None = clean_plate(plate) if plate else None
        with self.uow.read() as r:
            if fuzzy and isinstance(wanted, str):
                wanted = [p for p in r.traffic.plates(kind) if near(wanted, p)]
            rows = r.traffic.list(kind, camera=camera, plate=wanted, limit=limit, offset=offset)
        out = [views.traffic_record(row) for row in rows]
        details: dict[str, str | int | float | bool | None] = {
            "camera": camera, "plate_searched": bool(plate), "count": len(out)
        }  # fmt: skip
        if fuzzy:
            details["fuzzy"] = True
        self.uow.record(actor, f"traffic.{kind}.view", details=details)
        return out

    def traffic_counts(self, actor: User, *, camera: str | None = None) -> list[dict[str, object]]:
        """Passages per camera, line, direction and kind of object, with the mean speed (no plates; audited)."""
        self.uow.require(actor, "traffic.passages")
        with self.uow.read() as r:
            rows = r.traffic.counts(camera=camera)
        self.uow.record(actor, "traffic.counts.view", details={"camera": camera, "rows": len(rows)})
        keys = ("camera", "line", "direction", "object", "passages", "mean_speed_kmh")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    SERIES_MAX = 500_000
    """Passages a chart reads at most (a window that holds more is cut at its start and says so)."""

    def traffic_series(
        self, actor: User, *, camera: str | None = None, hours: int = 24, bucket_s: int = 3600
    ) -> dict[str, object]:
        """Passages per line and direction in time buckets over the last `hours`, for the traffic chart.

        Counts only (no plates, nobody's data), so reading them is not ledgered: the chart refreshes every few
        seconds.
        """
        self.uow.require(actor, "traffic.passages")
        if not 1 <= hours <= 24 * 31 or not 60 <= bucket_s <= 86_400:
            raise InputError("hours must be 1-744 and bucket_s 60-86400", hint="e.g. hours=24&bucket_s=3600")
        end = self.ctx.now()
        start = end - timedelta(hours=hours)
        with self.uow.read() as r:
            rows = r.traffic.passage_times(camera=camera, since=start, limit=self.SERIES_MAX)
        t0 = int(start.timestamp()) // bucket_s * bucket_s
        n = (int(end.timestamp()) - t0) // bucket_s + 1
        series: dict[str, list[int]] = {}
        for at, line, direction in rows:
            stamp = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
            i = (int(stamp.timestamp()) - t0) // bucket_s
            if 0 <= i < n:
                series.setdefault(f"{line} · {direction}", [0] * n)[i] += 1
        return {
            "t": [t0 + k * bucket_s for k in range(n)],
            "series": [{"label": k, "values": v} for k, v in sorted(series.items())],
            "truncated": len(rows) >= self.SERIES_MAX,
        }

    def evidence_package(self, actor: User, violation_id: int, *, justification: str) -> tuple[str, bytes]:
        """A violation's evidence package as a ZIP, for a written justification (the export is audited).

        The package holds the frames, the plate crop and the manifest (measurements with their uncertainty, the
        calibration, each file's sha256); the manifest's own sha256 is the one stored with the violation.

        Raises:
            StoreError: A file of the package is missing or no longer matches its recorded hash.
        """
        self.uow.require(actor, "media.export")
        obj = f"violation:{violation_id}"
        why = self.uow.justified(
            actor, "evidence.export_refused", justification, object=obj,
            reason=Phrase("an evidence export needs a written justification"), hint="say why, e.g. the case number",
        )  # fmt: skip
        self.uow.screen(actor, "evidence.export_refused", obj, {"justification": why})
        with self.uow.read() as r:
            v = r.traffic.violation(violation_id)
        folder = self.ctx.media.path(v.evidence)
        problems = verify_evidence(self.ctx.media.root, v.evidence, v.evidence_sha256)
        if problems:
            raise StoreError(
                f"the evidence package of violation {violation_id} fails its check: {'; '.join(problems)}",
                hint="it was changed or removed outside kuzet; an auditor should look at the ledger and the files",
            )
        files = sorted(p for p in folder.iterdir() if p.is_file())
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.writestr(f.name, f.read_bytes())
        details: Details = {"package_sha256": v.evidence_sha256, "files": len(files)}
        self.uow.record(actor, "evidence.export", object=obj, justification=why, details=details)
        return f"kuzet-violation-{violation_id}.zip", buffer.getvalue()

    def event_json(self, event: Event) -> dict[str, object]:
        """An event as the JSON object the CLI and API return."""
        return views.event(event, self.ctx.media)


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (a name may start with = + - @)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
