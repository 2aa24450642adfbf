"""Analysis runs and the match events they stored."""

from __future__ import annotations

import builtins
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.orm import Session

from kuzet.core.errors import NotFoundError
from kuzet.core.timeutil import iso_utc
from kuzet.core.types import Event
from kuzet.store.db import Database
from kuzet.store.models import AnalysisRunRow, EventRow


@dataclass(frozen=True, slots=True)
class RunRecord:
    """Counts of one analysis run."""

    camera: str
    source: str
    started_at: datetime
    frames: int
    faces: int
    tracks: int
    matched_tracks: int
    unknown_tracks: int


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A match event before it is stored."""

    person_id: int
    identity: str
    score: float
    start: float
    end: float
    track_id: int
    snapshot: str
    original: str = ""


class EventRepository:
    """Analysis runs and match events."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def save_run(
        self,
        run: RunRecord,
        events: list[NewEvent],
        *,
        now: datetime,
        run_id: int | None = None,
        commit_key: str | None = None,
    ) -> tuple[int, list[Event]]:
        """Store a run (or bring the stored run `run_id` up to date) and its new events; returns the run id and them.

        `commit_key` marks this commit on the run (see `run_of_commit`).
        """
        row = self.session.get(AnalysisRunRow, run_id) if run_id is not None else None
        if row is None:
            row = AnalysisRunRow(camera=run.camera, source=run.source, started_at=run.started_at)
            self.session.add(row)
        row.last_commit = commit_key
        row.finished_at = now
        row.frames = run.frames
        row.faces = run.faces
        row.tracks = run.tracks
        row.matched_tracks = run.matched_tracks
        row.unknown_tracks = run.unknown_tracks
        self.session.flush()
        rows = [
            EventRow(
                run_id=row.id,
                camera=run.camera,
                person_id=e.person_id,
                identity=e.identity,
                score=e.score,
                start=e.start,
                end=e.end,
                track_id=e.track_id,
                snapshot=e.snapshot,
                original=e.original,
                source=run.source,
                created_at=now,
            )
            for e in events
        ]
        self.session.add_all(rows)
        self.session.flush()
        return row.id, [_event(r) for r in rows]

    def run_of_commit(self, commit_key: str) -> int | None:
        """The run whose last commit had `commit_key` (a commit whose answer was lost did happen), else None."""
        found = self.session.scalar(select(AnalysisRunRow.id).where(AnalysisRunRow.last_commit == commit_key))
        return None if found is None else int(found)

    def get(self, event_id: int) -> Event:
        """One stored event.

        Raises:
            NotFoundError: There is no event `event_id`.
        """
        row = self.session.get(EventRow, event_id)
        if row is None:
            raise NotFoundError(f"there is no event {event_id}", hint="see the events page")
        return _event(row)

    def recognitions(self) -> dict[int, tuple[int, datetime]]:
        """Per enrolled person: how many match events are stored, and the newest one's time."""
        query = select(EventRow.person_id, func.count(), func.max(EventRow.created_at)).group_by(EventRow.person_id)
        return {int(p): (int(n), last) for p, n, last in self.session.execute(query).all() if p is not None}

    def count(self) -> int:
        """How many events are stored."""
        return int(self.session.scalar(select(func.count()).select_from(EventRow)) or 0)

    def media_of(self, event_id: int) -> tuple[str, str] | None:
        """(redacted snapshot, encrypted original) of an event, or None when there is no such event."""
        row = self.session.get(EventRow, event_id)
        return None if row is None else (row.snapshot, row.original)

    def count_of_person(self, person_id: int) -> int:
        """How many events of one person are left."""
        return int(
            self.session.scalar(select(func.count()).select_from(EventRow).where(EventRow.person_id == person_id)) or 0
        )

    def camera_runs(self) -> builtins.list[tuple[str, str, int, datetime]]:
        """(camera, source, frames, finished at) of every analysis run, oldest first."""
        rows = self.session.execute(
            select(
                AnalysisRunRow.camera, AnalysisRunRow.source, AnalysisRunRow.frames, AnalysisRunRow.finished_at
            ).order_by(AnalysisRunRow.id)
        )
        return [(c, s, int(f), t) for c, s, f, t in rows]

    def last_source(self, camera: str) -> str | None:
        """The source of a camera's newest analysis run."""
        return self.session.scalar(
            select(AnalysisRunRow.source)
            .where(AnalysisRunRow.camera == camera)
            .order_by(AnalysisRunRow.id.desc())
            .limit(1)
        )


_EVENT_COLUMNS = (EventRow.id, EventRow.camera, EventRow.identity, EventRow.person_id, EventRow.score, EventRow.start,
                  EventRow.end, EventRow.track_id, EventRow.snapshot, EventRow.run_id, EventRow.source,
                  EventRow.created_at, EventRow.original)  # fmt: skip
"""What an `Event` is made of: read as columns, which costs less than loading `EventRow` objects."""


def list_events(
    db: Database,
    *,
    camera: str | None = None,
    identity: str | None = None,
    limit: int = 1000,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Event]:
    """Stored events, newest first, optionally filtered by camera, identity and creation time.

    The API lists events on every request: one query, run on the driver (`Database.fetch`), outside any session.
    """
    query = _listing(since is not None, until is not None, bool(camera), bool(identity))
    values = {"since": since, "until": until, "camera": camera, "identity": identity}
    return [_event(r) for r in db.fetch(query, {"limit": limit, "offset": offset, **values})]


@functools.cache
def _listing(since: bool, until: bool, camera: bool, identity: bool) -> Select[*tuple[Any, ...]]:
    """The events listing with the filters given, built once per combination of filters.

    The API lists events on every request; a statement built once keeps SQLAlchemy's cache key and compiled SQL.
    """
    query = select(*_EVENT_COLUMNS).order_by(EventRow.id.desc())
    query = query.limit(bindparam("limit")).offset(bindparam("offset"))
    if since:
        query = query.where(EventRow.created_at >= bindparam("since"))
    if until:
        query = query.where(EventRow.created_at < bindparam("until"))
    if camera:
        query = query.where(EventRow.camera == bindparam("camera"))
    if identity:
        query = query.where(EventRow.identity == bindparam("identity"))
    return query


def _event(r: EventRow | Row[Any]) -> Event:
    return Event(
        event_id=r.id,
        camera=r.camera,
        identity=r.identity,
        person_id=r.person_id,
        score=r.score,
        start=r.start,
        end=r.end,
        track_id=r.track_id,
        snapshot=r.snapshot,
        run_id=r.run_id,
        source=r.source,
        created_at=iso_utc(r.created_at),
        original=r.original,
    )
