"""Retention rules: what may be held, what a purge reports, and when each kind of data falls due."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kuzet.governance.policy import RetentionPolicy

HOLD_TYPES = ("event", "alert", "person", "watchlist", "violation")


@dataclass(slots=True)
class PurgeReport:
    """What one purge removed (counts only: the ledger records these, never names)."""

    events: int = 0
    unconfirmed_alerts: int = 0
    confirmed_alerts: int = 0
    recordings: int = 0
    passages: int = 0
    violations: int = 0
    notices: int = 0
    """Integration notices never delivered and as old as the events they announced."""
    over_cap: int = 0
    files: int = 0
    bytes_freed: int = 0
    kept_on_hold: int = 0
    media_bytes: int = 0
    skipped: list[str] = field(default_factory=list)

    def details(self) -> dict[str, str | int | float | bool | None]:
        """The counts, for the ledger."""
        return {
            "events": self.events,
            "unconfirmed_alerts": self.unconfirmed_alerts,
            "confirmed_alerts": self.confirmed_alerts,
            "recordings": self.recordings,
            "passages": self.passages,
            "violations": self.violations,
            "notices": self.notices,
            "over_cap": self.over_cap,
            "files": self.files,
            "bytes_freed": self.bytes_freed,
            "kept_on_hold": self.kept_on_hold,
        }


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Records created before these moments are due (UTC)."""

    events: datetime
    unconfirmed_alerts: datetime
    confirmed_evidence: datetime
    recordings: datetime


def cutoffs(policy: RetentionPolicy, now: datetime) -> Cutoffs:
    """When each kind of data falls due under the policy, seen from `now`."""
    return Cutoffs(
        events=now - timedelta(days=policy.event_snapshots_days),
        unconfirmed_alerts=now - timedelta(days=policy.unconfirmed_alerts_days),
        confirmed_evidence=now - timedelta(days=policy.confirmed_evidence_days),
        recordings=now - timedelta(days=policy.recordings_days),
    )
