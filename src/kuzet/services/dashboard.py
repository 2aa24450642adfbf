"""What the dashboard's first page and its live updates show: counts, ledger state, new alerts."""

from __future__ import annotations

from kuzet.core.types import User
from kuzet.services import permissions
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork


class DashboardService:
    """Counts and the alert feed (no names: the review page shows those, to those who may see them)."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def overview(self, actor: User) -> dict[str, object]:
        """Alerts per status, events, ledger size and its newest checkpoint."""
        self.uow.require(actor, "overview.view")
        with self.uow.read() as r:
            alerts = r.alerts.count_by_status()
            events = r.events.count()
            cp = r.ledger.latest_checkpoint()
            size = r.ledger.size()
        return {
            "alerts": alerts,
            "events": events,
            "ledger_entries": size,
            "checkpoint": None
            if cp is None
            else {"id": cp.checkpoint_id, "tree_size": cp.tree_size, "root": cp.root_hash},
        }

    def sees_alerts(self, actor: User) -> bool:
        """Whether `actor` may be sent new alerts as they arrive."""
        return permissions.holds(actor, "alerts.view")

    def alert_feed(self, actor: User, after: int) -> list[dict[str, object]]:
        """Alerts newer than id `after`, for live updates (reviewers and auditors; nobody else gets any)."""
        if not self.sees_alerts(actor):
            return []
        with self.uow.read() as r:
            return r.alerts.feed(after)
