"""Tamper-evident audit ledger."""

from __future__ import annotations

from kuzet.audit.ledger import AuditEntry, AuditLedger, Checkpoint
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.verify import VerifyReport, verify_ledger

__all__ = ["AuditEntry", "AuditLedger", "Checkpoint", "LedgerSigner", "VerifyReport", "verify_ledger"]
