"""What the dashboard's first page and its live updates show: counts, ledger state, new alerts."""

from __future__ import annotations

import os

from kuzet.core.errors import NotFoundError
from kuzet.core.types import User
from kuzet.ingest.sources import redact_url
from kuzet.services import permissions
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.store.status import LATENCY_BUCKETS, CameraStatus, read_status


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

    def system(self, actor: User) -> dict[str, object]:
        """Health for the system page: the store and its ledger, the machine's load, and the live service.

        For each live camera: decode and analysis rates, drops, queue depth and analysis latency.
        """
        self.uow.require(actor, "cameras.status")
        with self.uow.read() as r:
            size = r.ledger.size()
            cp = r.ledger.latest_checkpoint()
            verified = r.ledger.last("audit.verify")
        db = self.ctx.db
        load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        out: dict[str, object] = {
            "store": "PostgreSQL" if db.postgres else "SQLite",
            "store_url": redact_url(db.url),
            "ledger_entries": size,
            "checkpoint": None
            if cp is None
            else {"tree_size": cp.tree_size, "signed": cp.ts[:19], "behind": size - cp.tree_size},
            "last_verified": None if verified is None else {"at": verified.ts[:19], "by": verified.actor},
            "cpu_count": os.cpu_count() or 1,
            "load": [round(x, 2) for x in load],
            "service": None,
            "cameras": [],
        }
        try:
            status = read_status(self.ctx.data_dir)
        except NotFoundError:
            return out
        now = self.ctx.now().timestamp()
        out["service"] = {
            "state": status.state, "pid": status.pid, "age_s": round(now - status.updated, 1),
            "mqtt_connected": status.mqtt_connected, "mqtt_published": status.mqtt_published,
            "webhooks_delivered": status.webhooks_delivered, "webhooks_failed": status.webhooks_failed,
        }  # fmt: skip
        up_s = max(status.updated - status.started, 1e-6)
        out["cameras"] = [_camera_health(c, up_s) for c in status.cameras]
        return out

    def sees_alerts(self, actor: User) -> bool:
        """Whether `actor` may be sent new alerts as they arrive."""
        return permissions.holds(actor, "alerts.view")

    def alert_feed(self, actor: User, after: int) -> list[dict[str, object]]:
        """Alerts newer than id `after`, for live updates (reviewers and auditors; nobody else gets any)."""
        if not self.sees_alerts(actor):
            return []
        with self.uow.read() as r:
            return r.alerts.feed(after)


def _camera_health(c: CameraStatus, up_s: float) -> dict[str, object]:
    """One camera's rates and health since `kuzet run` started (`up_s` seconds ago)."""
    decoded = c.frames_decoded
    buckets, count = c.latency_buckets, c.latency_count
    p95 = None
    if count:
        seen = 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), buckets, strict=True):
            seen += n
            if seen >= 0.95 * count:
                p95 = bound
                break
    return {
        "camera": c.camera, "state": c.state, "reason": c.reason, "node": c.node,
        "decoder": c.decoder,
        "decode_fps": round(decoded / up_s, 2), "analysis_fps": round(c.frames_analysed / up_s, 2),
        "dropped": c.frames_dropped, "dropped_pct": round(100 * c.frames_dropped / decoded, 1) if decoded else 0.0,
        "gated": c.frames_gated, "searched": c.frames_searched,
        "regions": c.frames_regions, "followed": c.frames_followed,
        "queue_depth": c.queue_depth, "reconnects": c.reconnects,
        "restarts": c.worker_restarts, "cpu_pct": round(100 * c.cpu_s / up_s, 1),
        "latency_mean_ms": round(1000 * c.latency_sum / count, 1) if count else None,
        "latency_p95_ms": None if p95 is None else ("> 5000" if p95 == float("inf") else round(1000 * p95)),
    }  # fmt: skip
