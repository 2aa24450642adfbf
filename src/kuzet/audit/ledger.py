"""The append-only audit ledger: a hash chain of entries, Merkle checkpoints signed with Ed25519, and verification.

Every entry stores the hash of the previous one, and its own hash is its RFC 6962 leaf hash, so the same hashes
serve the chain and the Merkle tree. Entries are appended inside the caller's database transaction, so an action
and its audit entry are committed together or not at all (a crash leaves neither).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from kuzet.audit import merkle
from kuzet.audit.ledger_sql import pipelined
from kuzet.audit.signing import LedgerSigner, rotation_statement
from kuzet.store.models import AuditEntryRow, CheckpointRow

GENESIS = "0" * 64
# Per-database frontier of the Merkle tree (with its last leaf), so that a checkpoint costs O(new entries), not
# O(ledger). Writers hold the database's write lock while they use it; the lock below guards the dict itself.
_FRONTIERS: dict[str, tuple[merkle.Frontier, bytes]] = {}
_FRONTIERS_LOCK = threading.Lock()
Details = Mapping[str, str | int | float | bool | None]
"""What an entry records besides actor, action, object and justification (scalars only)."""
Clock = Callable[[], datetime]
KEY_ROTATED = "audit.key_rotated"
"""The ledger action that hands checkpoint signing from one key to the next (details carry the signed statement)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One ledger entry as stored."""

    seq: int
    ts: str
    actor: str
    action: str
    object: str
    justification: str
    details: dict[str, str | int | float | bool | None]
    source: str
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry to append: what it records (the ledger adds sequence number, time and hashes)."""

    actor: str
    action: str
    object: str = ""
    justification: str = ""
    details: Details | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed (size, root) statement about the ledger.

    `public_key` is the raw Ed25519 key (hex) the statement is signed with; empty on checkpoints signed before keys
    were written into checkpoints (those are checked against the data directory's key).
    """

    checkpoint_id: int
    tree_size: int
    root_hash: str
    ts: str
    key_id: str
    signature: str
    public_key: str = ""

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return checkpoint_message(self.tree_size, self.root_hash, self.ts, self.public_key)

    def signed_json(self) -> dict[str, str | int]:
        """The checkpoint as witnesses and auditors hold it: everything needed to check it, and nothing else."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.ts,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }


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


def checkpoint_message(tree_size: int, root_hash: str, ts: str, public_key: str = "") -> bytes:
    """The statement a checkpoint signs (v2 names the signing key; v1, without one, is how older ones were signed)."""
    if not public_key:
        return f"kuzet-ledger-checkpoint/v1\n{tree_size}\n{root_hash}\n{ts}\n".encode()
    return f"kuzet-ledger-checkpoint/v2\n{tree_size}\n{root_hash}\n{ts}\n{public_key}\n".encode()


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
    return Checkpoint(row.id, row.tree_size, row.root_hash, row.ts, row.key_id, row.signature, row.public_key)


@dataclass(slots=True)
class _Appended:
    """What a transaction appended to the ledger (kept in its session's `info`, whichever `AuditLedger` wrote it)."""

    base_size: int
    """Entries before the transaction's first append (read under the write lock)."""
    base_hash: bytes
    """Leaf hash of entry `base_size` (empty for an empty ledger)."""
    leaves: list[bytes]
    """Leaf hashes of the entries appended since, in order."""
    checkpointed: int = -1
    """The size a checkpoint of this transaction already covers."""

    @property
    def size(self) -> int:
        return self.base_size + len(self.leaves)


def _continues(rows: list[Any], cached: merkle.Frontier, last: bytes) -> bool:
    """Whether `rows` ((seq, entry_hash) from the cached frontier's size on) start at its last leaf, without a gap."""
    return bool(rows) and rows[0] == (cached.size, last.hex()) and rows[-1][0] == cached.size + len(rows) - 1


_APPENDED = "kuzet_ledger_appended"
_FRONTIER = "kuzet_ledger_frontier"
"""`Session.info` key of the transaction's own copy of the cached frontier: (cache key, frontier, its last leaf)."""


@event.listens_for(Session, "after_soft_rollback")
@event.listens_for(Session, "after_commit")
def _forget_appended(session: Session, *_: Any) -> None:
    """What a transaction appended is known only within it: a rollback (a savepoint's too) or a commit forgets it."""
    session.info.pop(_APPENDED, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_frontier(session: Session, *_: Any) -> None:
    """A rollback (a savepoint's too) drops the transaction's copy of the frontier: the cache stays as it was."""
    session.info.pop(_FRONTIER, None)


@event.listens_for(Session, "after_commit")
def _publish_frontier(session: Session) -> None:
    """Once committed, the transaction's copy of the frontier, with its leaves, is the process's cache."""
    staged = session.info.pop(_FRONTIER, None)
    if staged is not None:
        key, frontier, last = staged
        with _FRONTIERS_LOCK:
            _FRONTIERS[key] = (frontier, last)


class AuditLedger:
    """Ledger operations within one database session (the caller's transaction)."""

    def __init__(self, session: Session, *, clock: Clock | None = None) -> None:
        self.session = session
        self.now = clock or (lambda: datetime.now(UTC))

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
        new = NewEntry(actor, action, object, justification, details, source)
        return self.append_many([new])[0]

    def append_many(self, new: list[NewEntry]) -> list[AuditEntry]:
        """Add entries after the current last one, in order, with one read of the chain's head and one insert.

        The rows go in as one multi-row INSERT, not as ORM objects: under load one batch holds the entries of every
        request answered meanwhile, and building and flushing an object per entry was most of the batch's time.
        """
        last = self._head()
        seq = 0 if last is None else last[0]
        prev = GENESIS if last is None else last[1]
        appended: _Appended | None = self.session.info.get(_APPENDED)
        if appended is None or appended.size != seq:
            appended = self.session.info[_APPENDED] = _Appended(seq, b"" if last is None else bytes.fromhex(prev), [])
        rows: list[dict[str, Any]] = []
        leaves: list[bytes] = []
        for e in new:
            seq += 1
            row: dict[str, Any] = {
                "seq": seq,
                "ts": self.now().isoformat(timespec="microseconds"),
                "actor": e.actor,
                "action": e.action,
                "object": e.object,
                "justification": e.justification,
                "details": json.dumps(e.details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
                "source": e.source,
                "prev_hash": prev,
            }
            leaf = merkle.leaf_hash(entry_bytes(**row))
            row["entry_hash"] = prev = leaf.hex()
            leaves.append(leaf)
            rows.append(row)
        if rows:
            if (on_driver := pipelined(self.session)) is not None:
                on_driver[1].insert_entries(on_driver[0], rows)
            else:
                self.session.connection().execute(insert(AuditEntryRow), rows)
            appended.leaves.extend(leaves)
        return [AuditEntry(**{**r, "details": json.loads(r["details"])}) for r in rows]

    def size(self) -> int:
        """Number of entries (the last sequence number: numbering has no gaps in an intact ledger)."""
        return int(self.session.scalar(select(func.max(AuditEntryRow.seq))) or 0)

    def entries(self, *, start: int = 1, limit: int = 1000, action: str | None = None) -> list[AuditEntry]:
        """Entries from sequence number `start` on, oldest first."""
        query = select(AuditEntryRow).where(AuditEntryRow.seq >= start).order_by(AuditEntryRow.seq).limit(limit)
        if action:
            query = query.where(AuditEntryRow.action == action)
        return [_to_entry(r) for r in self.session.scalars(query)]

    def last(self, action: str) -> AuditEntry | None:
        """The newest entry of an action, if any."""
        row = self.session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.action == action).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).first()
        return None if row is None else _to_entry(row)

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

    def _hashes(self, first: int) -> list[Any]:
        """(seq, entry_hash) of the entries numbered `first` and after, in order."""
        if (on_driver := pipelined(self.session)) is not None:
            return on_driver[1].hashes(on_driver[0], first)
        query = select(AuditEntryRow.seq, AuditEntryRow.entry_hash).where(AuditEntryRow.seq >= first)
        return list(self.session.execute(query.order_by(AuditEntryRow.seq)).all())

    def _head(self) -> tuple[int, str] | None:
        """(seq, entry_hash) of the last entry, read with the entries since the cached frontier, folded into it.

        Under load two processes take turns at the write lock, so each finds the other's last batch after its own
        frontier: reading it here, with the head, spares `_root` a second read (a round trip while the lock is held).
        Without a cached frontier, or one the database does not continue (see `_root`), only the head is read.
        """
        entry = self._frontier()
        if entry is not None and entry[0].size:
            cached, last = entry
            rows = self._hashes(cached.size)
            if _continues(rows, cached, last):
                for _, h in rows[1:]:
                    cached.append(bytes.fromhex(h))
                self._stage(cached, bytes.fromhex(rows[-1][1]))
            else:  # an entry edited or removed under the cache, a gap: `_root` starts over from every entry
                self._drop_frontier()
            if rows:  # every entry from the cached size on: the last is the head
                return int(rows[-1][0]), str(rows[-1][1])
        if (on_driver := pipelined(self.session)) is not None:
            return on_driver[1].head(on_driver[0])
        head = self.session.execute(
            select(AuditEntryRow.seq, AuditEntryRow.entry_hash).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).first()
        return None if head is None else (int(head[0]), str(head[1]))

    def _frontier_key(self) -> str:
        return str(self.session.get_bind().engine.url)

    def _frontier(self) -> tuple[merkle.Frontier, bytes] | None:
        """The transaction's copy of the process's cached frontier and its last leaf (None: nothing cached).

        The transaction changes its copy only; the copy becomes the cache when the transaction commits
        (`_publish_frontier`). A transaction rolled back, or failed in the database after its root was computed (in
        a pipeline the insert's error comes with the checkpoint's answer), leaves the cache without leaves the
        database never kept, so the next batch need not read every entry again while holding the write lock.
        """
        staged = self.session.info.get(_FRONTIER)
        if staged is not None:
            return staged[1], staged[2]
        with _FRONTIERS_LOCK:
            entry = _FRONTIERS.get(self._frontier_key())
        return None if entry is None else (entry[0].copy(), entry[1])

    def _stage(self, frontier: merkle.Frontier, last: bytes) -> None:
        self.session.info[_FRONTIER] = (self._frontier_key(), frontier, last)

    def _drop_frontier(self) -> None:
        self.session.info.pop(_FRONTIER, None)
        with _FRONTIERS_LOCK:
            _FRONTIERS.pop(self._frontier_key(), None)

    def _root(self, size: int, appended: _Appended | None) -> tuple[int, str]:
        """(size, root) of the whole ledger of `size` entries, extending a cached frontier with the newest leaves.

        When the cached frontier ends where this transaction's appends began (the usual case: this process wrote
        the entries before them), it is extended with the leaves just appended, without reading anything.
        """
        entry = self._frontier()
        cached, last = entry if entry is not None else (merkle.Frontier(), b"")
        if (
            entry is not None
            and appended is not None
            and appended.leaves
            and (cached.size, last) == (appended.base_size, appended.base_hash)
        ):
            for leaf in appended.leaves:
                cached.append(leaf)
            self._stage(cached, appended.leaves[-1])
            return cached.size, cached.root().hex()
        # The cached frontier's last entry and every newer one, in one read (another process wrote them). A cache
        # the database does not continue (an entry edited or removed under it, a restored backup, a gap in the
        # numbering) is suspect: then start over from every entry, read once more.
        rows = self._hashes(max(cached.size, 1))
        if cached.size and not (_continues(rows, cached, last) and rows[-1][0] == size):
            cached, last = merkle.Frontier(), b""
            rows = self._hashes(1)
        for seq, h in rows:
            if seq > cached.size:  # from the cached frontier's last entry on: the ones after it
                last = bytes.fromhex(h)
                cached.append(last)
        self._stage(cached, last)
        return cached.size, cached.root().hex()

    def checkpoint(self, signer: LedgerSigner, *, force: bool = False) -> Checkpoint | None:
        """Sign the current size and root; skipped (None) when nothing was added since the last one unless forced.

        The caller writes the checkpoint to the outside copy (`CheckpointLog.prepare`) before committing, and hands
        it to the witnesses once committed. (Verification never uses the cached frontier: it rehashes every entry.)
        """
        appended: _Appended | None = self.session.info.get(_APPENDED)
        if appended is not None and appended.leaves:  # this transaction wrote the newest entries: its size is known
            size = appended.size
            latest_size: int | None = appended.checkpointed
        else:
            if pipelined(self.session) is not None:
                raise RuntimeError("a pipelined transaction (the ledger's batch) checkpoints only what it appended")
            size = self.size()
            latest_size = self.session.scalar(
                select(CheckpointRow.tree_size).order_by(CheckpointRow.id.desc()).limit(1)
            )
        if latest_size == size and not force:
            return None
        size, root_hex = self._root(size, appended)
        ts = self.now().isoformat(timespec="microseconds")
        signature = signer.sign(checkpoint_message(size, root_hex, ts, signer.public_hex)).hex()
        values = {"tree_size": size, "root_hash": root_hex, "ts": ts, "key_id": signer.key_id,
                  "signature": signature, "public_key": signer.public_hex}  # fmt: skip
        cp_id = self._insert_checkpoint(values)
        if appended is not None:
            appended.checkpointed = size
        return Checkpoint(cp_id, size, root_hex, ts, signer.key_id, signature, signer.public_hex)

    def _insert_checkpoint(self, values: dict[str, Any]) -> int:
        if (on_driver := pipelined(self.session)) is not None:
            return on_driver[1].insert_checkpoint(on_driver[0], values)
        inserted = self.session.connection().execute(insert(CheckpointRow).values(values)).inserted_primary_key
        if inserted is None:
            raise RuntimeError("the database gave no id for the new checkpoint")
        return int(inserted[0])

    def record_key_rotation(self, old: LedgerSigner, new: LedgerSigner, *, actor: str, source: str) -> AuditEntry:
        """Append the entry that hands signing from `old` to `new`, with the statement `old` signs for it."""
        statement = old.sign(rotation_statement(old.public_hex, new.public_hex)).hex()
        return self.append(
            actor=actor,
            action=KEY_ROTATED,
            object=f"key:{new.key_id}",
            details={
                "old_key_id": old.key_id,
                "old_public_key": old.public_hex,
                "new_key_id": new.key_id,
                "new_public_key": new.public_hex,
                "statement_signature": statement,
            },
            source=source,
        )

    def key_rotations(self) -> list[KeyRotation]:
        """Every key hand-over recorded in the ledger, oldest first."""
        rows = self.session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.action == KEY_ROTATED).order_by(AuditEntryRow.seq)
        )
        return [rotation for row in rows if (rotation := KeyRotation.from_entry(row.seq, row.details)) is not None]


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """A hand-over from one checkpoint signing key to the next, signed by the old key."""

    seq: int
    old_public_key: str
    new_public_key: str
    signature: str

    @classmethod
    def from_entry(cls, seq: int, details_json: str) -> KeyRotation | None:
        """The rotation an `audit.key_rotated` entry records (None when its details are not a rotation)."""
        try:
            d = json.loads(details_json)
            return cls(seq, str(d["old_public_key"]), str(d["new_public_key"]), str(d["statement_signature"]))
        except (ValueError, KeyError, TypeError):
            return None

    def valid(self) -> bool:
        """Whether the old key really signed this hand-over."""
        from kuzet.audit.signing import verify_with

        return verify_with(
            self.old_public_key, rotation_statement(self.old_public_key, self.new_public_key), self.signature
        )

    def to_json(self) -> dict[str, str | int]:
        """The statement as an auditor's monitor receives it."""
        return {
            "seq": self.seq,
            "old_public_key": self.old_public_key,
            "new_public_key": self.new_public_key,
            "signature": self.signature,
        }


def rotation_chain(rotations: list[KeyRotation], old_key: str, new_key: str) -> list[KeyRotation] | None:
    """Valid, signed hand-overs leading from `old_key` to `new_key` in ledger order (None when there are none)."""
    chain: list[KeyRotation] = []
    key = old_key
    for r in rotations:
        if key == new_key:
            break
        if r.old_public_key == key and r.valid():
            chain.append(r)
            key = r.new_public_key
    return chain if key == new_key else None
