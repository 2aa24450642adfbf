"""Tamper-evident audit ledger."""

from __future__ import annotations

from kuzet.audit.ledger import AuditEntry, AuditLedger, Checkpoint, VerifyReport, verify_ledger
from kuzet.audit.signing import LedgerSigner

__all__ = ["AuditEntry", "AuditLedger", "Checkpoint", "LedgerSigner", "VerifyReport", "verify_ledger"]
