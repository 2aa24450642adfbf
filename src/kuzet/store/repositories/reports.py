"""What the transparency report counts, read from the store for one period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.audit.ledger import AuditLedger
from kuzet.governance.report import ReportInputs
from kuzet.store.models import AlertRow, AnalysisRunRow, AuditEntryRow, WatchlistEntryRow


def report_inputs(session: Session, t0: datetime, t1: datetime) -> ReportInputs:
    """Runs, watchlist entries, alerts and ledger entries from `t0` (inclusive) to `t1` (exclusive)."""
    runs = session.execute(
        select(
            AnalysisRunRow.camera, AnalysisRunRow.frames, AnalysisRunRow.tracks, AnalysisRunRow.unknown_tracks
        ).where(AnalysisRunRow.started_at >= t0, AnalysisRunRow.started_at < t1)
    ).all()
    entries = session.execute(
        select(WatchlistEntryRow.category, WatchlistEntryRow.legal_basis, WatchlistEntryRow.status).where(
            WatchlistEntryRow.created_at >= t0, WatchlistEntryRow.created_at < t1
        )
    ).all()
    alerts = session.scalars(select(AlertRow.status).where(AlertRow.created_at >= t0, AlertRow.created_at < t1))
    ledger = session.execute(
        select(AuditEntryRow.action, AuditEntryRow.justification, AuditEntryRow.details).where(
            AuditEntryRow.ts >= t0.isoformat(), AuditEntryRow.ts < t1.isoformat()
        )
    ).all()
    cp = AuditLedger(session).latest_checkpoint()
    return ReportInputs(
        runs=[(c, int(f), int(t), int(u)) for c, f, t, u in runs],
        entries=[(c, b, s) for c, b, s in entries],
        alert_statuses=list(alerts),
        ledger=[(a, j, d) for a, j, d in ledger],
        checkpoint=None if cp is None else {"id": cp.checkpoint_id, "signed_at": cp.ts, **cp.signed_json()},
    )
