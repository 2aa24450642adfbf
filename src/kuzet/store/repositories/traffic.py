"""Traffic passages over counting lines, and violations with their evidence package's path and hash."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.analytics.traffic import Passage, Violation
from kuzet.core.errors import NotFoundError
from kuzet.store.models import PassageRow, ViolationRow


@dataclass(frozen=True, slots=True)
class StoredViolation:
    """A violation as stored: its row id and evidence package."""

    id: int
    kind: str
    place: str
    at: float
    plate: str | None
    measurements: dict[str, object]
    evidence: str
    evidence_sha256: str


class TrafficRepository:
    """Passages and violations of analysis runs."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_passages(self, run_id: int, camera: str, passages: list[Passage], *, now: datetime) -> None:
        """Store passages of one run."""
        for p in passages:
            self.session.add(
                PassageRow(
                    run_id=run_id,
                    camera=camera,
                    line=p.line,
                    direction=p.direction,
                    label=p.label,
                    track_id=p.track_id,
                    at=round(p.pts, 3),
                    speed_kmh=p.speed_kmh,
                    speed_err_kmh=p.speed_err_kmh,
                    plate=p.plate,
                    created_at=now,
                )
            )

    def add_violation(
        self, run_id: int, camera: str, v: Violation, *, evidence: str, digest: str, now: datetime
    ) -> StoredViolation:
        """Store one violation with its evidence package's folder and sha256."""
        row = ViolationRow(
            run_id=run_id,
            camera=camera,
            kind=v.kind,
            place=v.where,
            track_id=v.track_id,
            at=round(v.pts, 3),
            plate=v.plate,
            measurements=json.dumps(v.measurements, sort_keys=True),
            evidence=evidence,
            evidence_sha256=digest,
            created_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return StoredViolation(row.id, v.kind, v.where, row.at, v.plate, dict(v.measurements), evidence, digest)

    def list(
        self, kind: str, *, camera: str | None, plate: str | Sequence[str] | None, limit: int, offset: int
    ) -> list[PassageRecord | ViolationRecord]:
        """Stored passages or violations (`kind`), newest first, by camera and plate (one, or any of a list)."""
        row_type: type[PassageRow] | type[ViolationRow] = PassageRow if kind == "passages" else ViolationRow
        query = select(row_type).order_by(row_type.id.desc()).limit(limit).offset(offset)
        if camera:
            query = query.where(row_type.camera == camera)
        if isinstance(plate, str):
            query = query.where(row_type.plate == plate)
        elif plate is not None:
            query = query.where(row_type.plate.in_(plate))
        return [_record(r) for r in cast("list[PassageRow | ViolationRow]", list(self.session.scalars(query)))]

    def plates(self, kind: str) -> Sequence[str]:
        """Every distinct plate read on stored passages or violations (`kind`)."""
        row_type: type[PassageRow] | type[ViolationRow] = PassageRow if kind == "passages" else ViolationRow
        query = select(row_type.plate).where(row_type.plate.is_not(None)).distinct()
        return [p for p in self.session.scalars(query) if p]

    def counts(self, *, camera: str | None) -> Sequence[tuple[str, str, str, str, int, float | None]]:
        """Passages per camera, line, direction and object: (camera, line, direction, object, count, mean km/h)."""
        query = select(
            PassageRow.camera, PassageRow.line, PassageRow.direction, PassageRow.label,
            func.count(), func.avg(PassageRow.speed_kmh),
        ).group_by(PassageRow.camera, PassageRow.line, PassageRow.direction, PassageRow.label)  # fmt: skip
        if camera:
            query = query.where(PassageRow.camera == camera)
        return [
            (c, line, d, label, int(n), None if v is None else float(v))
            for c, line, d, label, n, v in self.session.execute(query.order_by(PassageRow.camera, PassageRow.line))
        ]

    def passage_times(self, *, camera: str | None, since: datetime, limit: int) -> Sequence[tuple[datetime, str, str]]:
        """(stored at, line, direction) of passages since `since`, oldest first, at most `limit`."""
        query = (
            select(PassageRow.created_at, PassageRow.line, PassageRow.direction)
            .where(PassageRow.created_at >= since)
            .order_by(PassageRow.created_at)
            .limit(limit)
        )
        if camera:
            query = query.where(PassageRow.camera == camera)
        return [(t, line, d) for t, line, d in self.session.execute(query)]

    def violation(self, violation_id: int) -> ViolationRecord:
        """One stored violation.

        Raises:
            NotFoundError: There is no violation `violation_id`.
        """
        row = self.session.get(ViolationRow, violation_id)
        if row is None:
            raise NotFoundError(f"there is no traffic violation {violation_id}", hint="see the traffic page")
        return cast("ViolationRecord", _record(row))


@dataclass(frozen=True, slots=True)
class PassageRecord:
    """A stored passage."""

    id: int
    run_id: int
    camera: str
    track_id: int
    at: float
    plate: str | None
    created_at: datetime
    line: str
    direction: str
    label: str
    speed_kmh: float | None
    speed_err_kmh: float | None


@dataclass(frozen=True, slots=True)
class ViolationRecord:
    """A stored violation."""

    id: int
    run_id: int
    camera: str
    track_id: int
    at: float
    plate: str | None
    created_at: datetime
    kind: str
    place: str
    measurements: dict[str, object]
    evidence: str
    evidence_sha256: str


def _record(row: PassageRow | ViolationRow) -> PassageRecord | ViolationRecord:
    if isinstance(row, PassageRow):
        return PassageRecord(
            row.id, row.run_id, row.camera, row.track_id, row.at, row.plate, row.created_at,
            row.line, row.direction, row.label, row.speed_kmh, row.speed_err_kmh,
        )  # fmt: skip
    return ViolationRecord(
        row.id, row.run_id, row.camera, row.track_id, row.at, row.plate, row.created_at,
        row.kind, row.place, json.loads(row.measurements), row.evidence, row.evidence_sha256,
    )  # fmt: skip
