"""The append-only audit ledger: a hash chain of entries, Merkle checkpoints signed with Ed25519, and verification.

Every entry stores the hash of the previous one, and its own hash is its RFC 6962 leaf hash, so the same hashes
serve the chain and the Merkle tree. Entries are appended inside the caller's database transaction, so an action
and its audit entry are committed together or not at all (a crash leaves neither).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.audit import merkle
from kuzet.audit.signing import LedgerSigner
from kuzet.store.models import AuditEntryRow, CheckpointRow

GENESIS = "0" * 64
# Per-database frontier of the Merkle tree (with its last leaf), so that a checkpoint costs O(new entries), not
# O(ledger). Writers hold the database's write lock while they use it; the lock below guards the dict itself.
_FRONTIERS: dict[str, tuple[merkle.Frontier, bytes]] = {}
_FRONTIERS_LOCK = threading.Lock()
Details = dict[str, str | int | float | bool | None]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One ledger entry as stored."""

    seq: int
    ts: str
    actor: str
    action: str
    object: str
    justification: str
    details: Details
    source: str
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed (size, root) statement about the ledger."""

    checkpoint_id: int
    tree_size: int
    root_hash: str
    ts: str
    key_id: str
    signature: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of `verify_ledger`; `first_bad` names the first entry found wrong (0 when none)."""

    ok: bool
    entries: int
    checkpoints: int
    first_bad: int
    problem: str


def entry_bytes(
    *,
    seq: int,
    ts: str,
    actor: str,
    action: str,
    object: str,
    justification: str,
    details: str,
    source: str,
    prev_hash: str,
) -> bytes:
    """The canonical bytes an entry's hash covers (sorted-key compact JSON, UTF-8)."""
    body = {
        "seq": seq,
        "ts": ts,
        "actor": actor,
        "action": action,
        "object": object,
        "justification": justification,
        "details": details,
        "source": source,
        "prev_hash": prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _row_hash(row: AuditEntryRow) -> str:
    data = entry_bytes(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        object=row.object,
        justification=row.justification,
        details=row.details,
        source=row.source,
        prev_hash=row.prev_hash,
    )
    return merkle.leaf_hash(data).hex()


def checkpoint_message(tree_size: int, root_hash: str, ts: str) -> bytes:
    """The statement a checkpoint signs."""
    return f"kuzet-ledger-checkpoint/v1\n{tree_size}\n{root_hash}\n{ts}\n".encode()


def _to_entry(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        object=row.object,
        justification=row.justification,
        details=json.loads(row.details),
        source=row.source,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


def _to_checkpoint(row: CheckpointRow) -> Checkpoint:
    return Checkpoint(row.id, row.tree_size, row.root_hash, row.ts, row.key_id, row.signature)


class AuditLedger:
    """Ledger operations within one database session (the caller's transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(
        self,
        *,
        actor: str,
        action: str,
        object: str = "",
        justification: str = "",
        details: Details | None = None,
        source: str = "",
    ) -> AuditEntry:
        """Add an entry after the current last one."""
        last = self.session.execute(
            select(AuditEntryRow.seq, AuditEntryRow.entry_hash).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).first()
        seq = 1 if last is None else last[0] + 1
        prev = GENESIS if last is None else last[1]
        row = AuditEntryRow(
            seq=seq,
            ts=datetime.now(UTC).isoformat(timespec="microseconds"),
            actor=actor,
            action=action,
            object=object,
            justification=justification,
            details=json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            source=source,
            prev_hash=prev,
            entry_hash="",
        )
        row.entry_hash = _row_hash(row)
        self.session.add(row)
        self.session.flush()
        return _to_entry(row)

    def size(self) -> int:
        """Number of entries (the last sequence number: numbering has no gaps in an intact ledger)."""
        return int(self.session.scalar(select(func.max(AuditEntryRow.seq))) or 0)

    def entries(self, *, start: int = 1, limit: int = 1000, action: str | None = None) -> list[AuditEntry]:
        """Entries from sequence number `start` on, oldest first."""
        query = select(AuditEntryRow).where(AuditEntryRow.seq >= start).order_by(AuditEntryRow.seq).limit(limit)
        if action:
            query = query.where(AuditEntryRow.action == action)
        return [_to_entry(r) for r in self.session.scalars(query)]

    def leaves(self, size: int | None = None) -> list[bytes]:
        """Leaf hashes of the first `size` entries (all when None), in order."""
        query = select(AuditEntryRow.entry_hash).order_by(AuditEntryRow.seq)
        if size is not None:
            query = query.limit(size)
        return [bytes.fromhex(h) for h in self.session.scalars(query)]

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first."""
        return [_to_checkpoint(r) for r in self.session.scalars(select(CheckpointRow).order_by(CheckpointRow.id))]

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint, if any."""
        row = self.session.scalars(select(CheckpointRow).order_by(CheckpointRow.id.desc()).limit(1)).first()
        return None if row is None else _to_checkpoint(row)

    def _root(self, size: int) -> tuple[int, str]:
        """(size, root) of the whole ledger of `size` entries, extending a cached frontier with the newest leaves."""
        bind = self.session.get_bind()
        key = str(bind.engine.url)
        with _FRONTIERS_LOCK:
            entry = _FRONTIERS.get(key)
        cached, last = entry if entry is not None else (merkle.Frontier(), b"")
        if cached.size:
            # A rolled-back transaction may have left leaves in the cache that the database never kept.
            stored = self.session.scalar(select(AuditEntryRow.entry_hash).where(AuditEntryRow.seq == cached.size))
            if cached.size > size or stored is None or bytes.fromhex(stored) != last:
                cached, last = merkle.Frontier(), b""
        newer = self.session.scalars(
            select(AuditEntryRow.entry_hash).where(AuditEntryRow.seq > cached.size).order_by(AuditEntryRow.seq)
        )
        for h in newer:
            last = bytes.fromhex(h)
            cached.append(last)
        if cached.size != size:  # a gap in the numbering: rebuild rather than trust anything cached
            cached = merkle.Frontier()
            for leaf in self.leaves():
                cached.append(leaf)
                last = leaf
        with _FRONTIERS_LOCK:
            _FRONTIERS[key] = (cached, last)
        return cached.size, cached.root().hex()

    def checkpoint(self, signer: LedgerSigner, *, force: bool = False) -> Checkpoint | None:
        """Sign the current size and root; skipped (None) when nothing was added since the last one unless forced.

        Once the transaction commits, pass the checkpoint to `append_checkpoint_log` to keep a copy outside the
        database. (Verification never uses the cached frontier: it rehashes every entry.)
        """
        size = self.size()
        latest_size = self.session.scalar(select(CheckpointRow.tree_size).order_by(CheckpointRow.id.desc()).limit(1))
        if latest_size == size and not force:
            return None
        size, root_hex = self._root(size)
        leaves_count = size
        ts = datetime.now(UTC).isoformat(timespec="microseconds")
        signature = signer.sign(checkpoint_message(leaves_count, root_hex, ts)).hex()
        row = CheckpointRow(
            tree_size=leaves_count, root_hash=root_hex, ts=ts, key_id=signer.key_id, signature=signature
        )
        self.session.add(row)
        self.session.flush()
        return _to_checkpoint(row)


def append_checkpoint_log(log_file: Path, cp: Checkpoint) -> None:
    """Append a committed checkpoint to the outside copy (JSON lines), flushed to disk."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as f:
        f.write(json.dumps(cp_json(cp), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def cp_json(cp: Checkpoint) -> dict[str, str | int]:
    """A checkpoint as a JSON object."""
    return {
        "id": cp.checkpoint_id,
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash,
        "ts": cp.ts,
        "key_id": cp.key_id,
        "signature": cp.signature,
    }


def verify_ledger(session: Session, signer: LedgerSigner, *, log_file: Path | None = None) -> VerifyReport:
    """Check the whole ledger: numbering, chain links, entry hashes, and every checkpoint's signature and root.

    Detects any edit, deletion, insertion or reordering of entries made directly in the database, and the
    deletion of checkpoints that the outside copy (`log_file`) still lists.
    """
    rows = list(session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq)))
    prev = GENESIS
    for i, row in enumerate(rows):
        expected = i + 1
        if row.seq != expected:
            what = "missing" if row.seq > expected else "duplicated"
            return VerifyReport(False, len(rows), 0, expected, f"entry {expected} is {what} (found {row.seq} next)")
        if row.prev_hash != prev:
            return VerifyReport(
                False,
                len(rows),
                0,
                row.seq,
                f"entry {row.seq} does not follow entry {row.seq - 1}: the chain is broken",
            )
        if _row_hash(row) != row.entry_hash:
            return VerifyReport(False, len(rows), 0, row.seq, f"entry {row.seq} was altered: its hash does not match")
        prev = row.entry_hash
    leaves = [bytes.fromhex(r.entry_hash) for r in rows]
    checkpoints = list(session.scalars(select(CheckpointRow).order_by(CheckpointRow.id)))
    for cp in checkpoints:
        message = checkpoint_message(cp.tree_size, cp.root_hash, cp.ts)
        if not signer.verify(message, bytes.fromhex(cp.signature)):
            return VerifyReport(False, len(rows), len(checkpoints), 0, f"checkpoint {cp.id} has a bad signature")
        if cp.tree_size > len(rows):
            return VerifyReport(
                False,
                len(rows),
                len(checkpoints),
                len(rows) + 1,
                f"checkpoint {cp.id} covers {cp.tree_size} entries but the ledger holds {len(rows)}: "
                "entries were removed",
            )
        if merkle.root(leaves[: cp.tree_size]).hex() != cp.root_hash:
            return VerifyReport(
                False,
                len(rows),
                len(checkpoints),
                1,
                f"entries 1..{cp.tree_size} do not match checkpoint {cp.id}: the ledger was rewritten",
            )
    if log_file is not None and log_file.exists():
        by_id = {cp.id: cp for cp in checkpoints}
        lines = log_file.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            try:
                logged = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines) - 1:
                    break  # a line torn by a crash while it was written; the database copy is authoritative
                return VerifyReport(False, len(rows), len(checkpoints), 0, f"{log_file.name} line {n + 1} is corrupt")
            db_cp = by_id.get(int(logged["id"]))
            if db_cp is None or db_cp.root_hash != logged["root_hash"] or db_cp.tree_size != logged["tree_size"]:
                return VerifyReport(
                    False,
                    len(rows),
                    len(checkpoints),
                    0,
                    f"checkpoint {logged['id']} in {log_file.name} is missing or different in the database",
                )
    return VerifyReport(True, len(rows), len(checkpoints), 0, "")
