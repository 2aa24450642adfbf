"""The gallery's change feed: which enrolments and watchlist entries changed, in commit order.

Every change that can alter what a camera matches (an approval, a rejection, an expiry, templates destroyed, an
erasure) adds a row in the same transaction. A running camera remembers the last id it applied and, every
`run.gallery_poll_s`, loads only the subjects changed since (see `services.gallery`). Writes hold the one write
lock, so ids become visible in increasing order. Rows hold ids only, nothing about a person.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kuzet.store.models import GalleryChangeRow

KEEP = 10_000
"""Changes kept; a camera further behind than that reloads its whole gallery."""


class ChangeFeed:
    """Notes and reads gallery changes."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def note(self, subject: str) -> None:
        """Record that `subject` (`person:ID` or `watchlist:ID`) changed (in the caller's transaction)."""
        self.session.add(GalleryChangeRow(subject=subject))

    def head(self) -> int:
        """The newest change's id (0 when there was none)."""
        return int(self.session.scalar(select(func.max(GalleryChangeRow.id))) or 0)

    def oldest(self) -> int:
        """The oldest change still kept (0 when none)."""
        return int(self.session.scalar(select(func.min(GalleryChangeRow.id))) or 0)

    def after(self, last_id: int, *, limit: int = 1000) -> list[tuple[int, str]]:
        """(id, subject) of changes after `last_id`, oldest first."""
        rows = self.session.execute(
            select(GalleryChangeRow.id, GalleryChangeRow.subject)
            .where(GalleryChangeRow.id > last_id)
            .order_by(GalleryChangeRow.id)
            .limit(limit)
        )
        return [(i, s) for i, s in rows]

    def trim(self, keep: int = KEEP) -> int:
        """Delete all but the newest `keep` changes; returns how many."""
        cut = self.head() - keep
        if cut <= 0:
            return 0
        result = self.session.execute(delete(GalleryChangeRow).where(GalleryChangeRow.id <= cut))
        return int(getattr(result, "rowcount", 0) or 0)
