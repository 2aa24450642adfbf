"""Retention enforced by the system: purges on a schedule and on demand, and the legal holds that stop them."""

from __future__ import annotations

from datetime import datetime, timedelta

from kuzet.core.errors import InputError, KuzetError
from kuzet.core.i18n import Phrase
from kuzet.core.types import User
from kuzet.governance.retention import HOLD_TYPES, PurgeReport
from kuzet.services.context import ServiceContext
from kuzet.services.gallery import GalleryService
from kuzet.services.media import playback_dir, sweep_playback
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.services.watchlists import WatchlistService
from kuzet.store.repositories.holds import Hold
from kuzet.store.repositories.retention import purge

MAX_CASE = 100
"""Characters a case reference may have (the column's width)."""


class RetentionService:
    """Legal holds, and deleting what is due."""

    def __init__(
        self, ctx: ServiceContext, uow: AuditedUnitOfWork, gallery: GalleryService, watchlists: WatchlistService
    ) -> None:
        self.ctx = ctx
        self.uow = uow
        self.gallery = gallery
        self.watchlists = watchlists

    def hold(self, actor: User, case: str, object_type: str, object_id: int, *, reason: str) -> int:
        """Put an event, alert, person, watchlist entry or traffic violation under legal hold for a case."""
        self.uow.require(actor, "holds.add")
        if object_type not in HOLD_TYPES:
            raise KuzetError(f"cannot hold a {object_type!r}", hint=f"hold one of: {', '.join(HOLD_TYPES)}")
        obj = f"{object_type}:{object_id}"
        if not case.strip() or not reason.strip():
            raise self.uow.refuse(
                actor,
                "hold.refused",
                object=obj,
                reason=Phrase("a hold needs a case reference and a reason"),
                hint="give --case and --reason",
            )
        self.uow.capped(actor, "hold.refused", obj, {"case": case}, most=MAX_CASE)
        self.uow.capped(actor, "hold.refused", obj, {"reason": reason})
        with self.uow.tx() as w:
            hold_id = w.holds.add(
                case.strip(), object_type, object_id, reason=reason.strip(), user_id=actor.user_id, now=self.ctx.now()
            )
            w.audit(actor, "hold.add", object=obj, justification=reason.strip(), details={"case": case.strip()})
        return hold_id

    def release(self, actor: User, case: str, *, reason: str) -> int:
        """Release every hold of a case (with a written reason); returns how many.

        Raises:
            InputError: The case has no active hold (a mistyped case would otherwise read as released); nothing
                changes.
        """
        self.uow.require(actor, "holds.release")
        case = case.strip()  # as `hold` stored it
        self.uow.justified(
            actor,
            "hold.release_refused",
            reason,
            object=f"case:{case[:100]}",
            reason=Phrase("releasing a hold needs a written reason"),
            hint="explain in at least 10 characters why the case no longer needs the records",
        )
        with self.uow.tx() as w:
            n = w.holds.release(case, now=self.ctx.now())
            if not n:  # rolls back: nothing released, nothing ledgered
                raise InputError(
                    f"case {case[:100]!r} has no active hold to release",
                    hint="check the case reference against `kuzet hold list`",
                )
            w.audit(actor, "hold.release", object=f"case:{case}", justification=reason.strip(), details={"holds": n})
        return n

    def holds(self, actor: User) -> list[Hold]:
        """Active holds."""
        self.uow.require(actor, "holds.list")
        with self.uow.read() as r:
            return r.holds.active()

    def run(self, actor: User | None) -> PurgeReport:
        """Delete what the policy's retention periods say is due (not what is on hold); audited with counts."""
        if actor is not None:
            self.uow.require(actor, "retention.run")
        self.watchlists.expire()
        self.gallery.expire()
        with self.uow.tx() as w:
            report = purge(w.session, self.ctx.media, self.ctx.policy.model.retention, self.ctx.now())
            w.audit(actor, "retention.purge", details=report.details())
        # the redacted playback copies of purged recordings go with them
        sweep_playback(self.ctx.media, playback_dir(self.ctx.data_dir), now=self.ctx.now().timestamp())
        return report

    def maybe_purge(self) -> PurgeReport | None:
        """Run retention on its own schedule: when the last purge is older than `retention.interval_hours`."""
        with self.uow.read() as r:
            last = r.ledger.last("retention.purge")
        interval = timedelta(hours=self.ctx.policy.model.retention.interval_hours)
        if last is not None and datetime.fromisoformat(last.ts) > self.ctx.now() - interval:
            return None
        return self.run(None)
