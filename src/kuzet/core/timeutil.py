"""Timestamps: SQLite hands back naive datetimes; kuzet stores and shows UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(ts: datetime) -> datetime:
    """`ts` with UTC attached when it has no time zone (as SQLite returns it)."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def iso_utc(ts: datetime | None) -> str:
    """ISO 8601 in UTC to the second, or "" for None."""
    return "" if ts is None else aware(ts).isoformat(timespec="seconds")
