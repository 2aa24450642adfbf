"""The public transparency report: aggregates of a period, signed off by the ledger's key."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta

from cryptography.hazmat.primitives import serialization

from kuzet.core.errors import InputError, KuzetError
from kuzet.core.i18n import Phrase
from kuzet.core.types import User
from kuzet.governance.report import TransparencyReport, build_report
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.store.repositories.reports import report_inputs


class ReportService:
    """Reports anyone may read (no names, no faces, no plates)."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def transparency(self, actor: User, start: date, end: date) -> TransparencyReport:
        """The public report for `start` to `end` (inclusive UTC days; aggregates only); producing it is audited."""
        self.uow.require(actor, "report.transparency")
        if end < start:
            raise KuzetError(
                Phrase("the period ends before it starts (--to is before --from)"),
                hint="give the period's first and last day",
            )
        if end >= date.max - timedelta(days=1):
            raise InputError(
                Phrase("{day} is not a day a report can cover", day=end), hint="give a real period, e.g. a month"
            )
        signer = self.ctx.signer
        pem = signer.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        self.uow.record(actor, "report.export", details={"from": start.isoformat(), "to": end.isoformat()})
        digest = hashlib.sha256(bytes.fromhex(signer.public_hex)).hexdigest()
        fingerprint = "SHA256:" + ":".join(digest[i : i + 4] for i in range(0, 64, 4))
        t0 = datetime.combine(start, time(0), tzinfo=UTC)
        t1 = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
        with self.uow.read() as r:
            inputs = report_inputs(r.session, t0, t1)
        return build_report(
            inputs,
            self.ctx.policy,
            start=start,
            end=end,
            now=self.ctx.now(),
            public_key_pem=pem,
            key_fingerprint=fingerprint,
        )
