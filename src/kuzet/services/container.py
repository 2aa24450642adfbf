"""The composition root: one data directory opened, and every service built over it, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kuzet.config.models import KuzetConfig
from kuzet.governance.policy import Policy
from kuzet.services.analysis import AnalysisService
from kuzet.services.audit import AuditService
from kuzet.services.cameras import CameraService
from kuzet.services.context import Now, ServiceContext
from kuzet.services.dashboard import DashboardService
from kuzet.services.gallery import GalleryService
from kuzet.services.keys import KeyService
from kuzet.services.media import MediaService
from kuzet.services.records import RecordService
from kuzet.services.reports import ReportService
from kuzet.services.retention import RetentionService
from kuzet.services.review import ReviewService
from kuzet.services.subjects import SubjectService
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.services.users import UserService, record_policy
from kuzet.services.watchlists import WatchlistService


@dataclass(frozen=True, slots=True)
class Services:
    """Every service over one data directory (the CLI, the API and the dashboard use these, nothing else)."""

    ctx: ServiceContext
    uow: AuditedUnitOfWork
    users: UserService
    gallery: GalleryService
    watchlists: WatchlistService
    retention: RetentionService
    analysis: AnalysisService
    records: RecordService
    review: ReviewService
    audit: AuditService
    media: MediaService
    subjects: SubjectService
    keys: KeyService
    reports: ReportService
    cameras: CameraService
    dashboard: DashboardService

    def close(self) -> None:
        """Commit queued ledger entries, deliver queued checkpoints to the witnesses and release the database."""
        self.uow.close()
        self.ctx.close()


def build_services(
    data_dir: Path,
    config: KuzetConfig | None = None,
    *,
    policy: Policy | None = None,
    origin: str | None = None,
    clock: Now | None = None,
    prepare: bool = True,
) -> Services:
    """Open `data_dir` (created, owner-only, migrated) and build every service over it.

    The policy in force is recorded in the ledger when it changed since it was last recorded, and watchlist photos
    an older kuzet stored in the clear are encrypted. Without `prepare` (the processes of `kuzet serve --workers N`,
    whose parent prepared the directory) there is no migration, no key-rotation finish and no photo encryption.
    """
    ctx = ServiceContext(data_dir, config, policy=policy, origin=origin, clock=clock, prepare=prepare)
    uow = AuditedUnitOfWork(ctx)
    users = UserService(ctx, uow)
    gallery = GalleryService(ctx, uow)
    watchlists = WatchlistService(ctx, uow, gallery)
    retention = RetentionService(ctx, uow, gallery, watchlists)
    services = Services(
        ctx=ctx,
        uow=uow,
        users=users,
        gallery=gallery,
        watchlists=watchlists,
        retention=retention,
        analysis=AnalysisService(ctx, uow, gallery, watchlists, retention),
        records=RecordService(ctx, uow),
        review=ReviewService(ctx, uow),
        audit=AuditService(ctx, uow),
        media=MediaService(ctx, uow, gallery, watchlists),
        subjects=SubjectService(ctx, uow, gallery),
        keys=KeyService(ctx, uow),
        reports=ReportService(ctx, uow),
        cameras=CameraService(ctx, uow),
        dashboard=DashboardService(ctx, uow),
    )
    users.record_policy()
    if prepare:
        watchlists.encrypt_plain_photos()
    return services


def build_analysis(data_dir: Path, config: KuzetConfig, *, origin: str) -> AnalysisService:
    """What a live camera worker writes through, and nothing more: no migration, no other service.

    The supervisor opened (and migrated) the data directory before it started the worker. The policy is ledgered
    only if it changed since (a worker restarted after an edit of policy.yaml).
    """
    ctx = ServiceContext(data_dir, config, origin=origin, prepare=False)
    uow = AuditedUnitOfWork(ctx)
    record_policy(ctx, uow)  # a worker restarted after policy.yaml changed matches under a recorded policy
    gallery = GalleryService(ctx, uow)
    return AnalysisService(ctx, uow, gallery, WatchlistService(ctx, uow, gallery))
