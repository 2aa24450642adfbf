"""Verification of the whole ledger, and of the ledger against checkpoints that others hold.

`verify_ledger` streams the ledger in one read transaction (it never blocks writers) and checks, in order:

- numbering, chain links and entry hashes (an edited, deleted, inserted or reordered entry);
- every checkpoint: its signature under its own public key, its root against the entries, its place in the order;
- the signing key: a checkpoint signed by another key than the one before it needs a hand-over entry signed by the old
  key (`audit.key_rotated`), and the key in `keys/` must be the newest checkpoint's;
- that no entry lies past the newest checkpoint (entries deleted with their checkpoints leave that behind);
- the outside copy `audit/checkpoints.jsonl`: present, never behind the database, every committed line still there;
- every trusted checkpoint given (from witnesses or auditors): today's ledger extends it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.audit import merkle
from kuzet.audit.checkpoint_log import CheckpointLog
from kuzet.audit.ledger import GENESIS, KEY_ROTATED, KeyRotation, _row_hash, checkpoint_message, rotation_chain
from kuzet.audit.signing import LedgerSigner, key_id_of, verify_with
from kuzet.core.errors import InputError
from kuzet.store.models import AuditEntryRow, CheckpointRow

BATCH = 2000


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of `verify_ledger`; `first_bad` names the first entry found wrong (0 when none)."""

    ok: bool
    entries: int
    checkpoints: int
    first_bad: int
    problem: str
    trusted: int = 0
    """Trusted checkpoints that today's ledger was checked against."""


@dataclass(frozen=True, slots=True)
class TrustedCheckpoint:
    """A signed checkpoint held outside the data directory (`kuzet audit checkpoint --json`, a witness's copy)."""

    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    public_key: str
    signature: str
    label: str = ""
    """Where it came from (file and line), for messages."""

    @classmethod
    def from_json(cls, obj: object, *, label: str) -> TrustedCheckpoint:
        """Parse the JSON object of a signed checkpoint.

        Raises:
            InputError: The object lacks a field or a field has the wrong type.
        """
        if not isinstance(obj, dict):
            raise InputError(
                f"{label} is not a checkpoint object", hint="give what `kuzet audit checkpoint --json` prints"
            )
        try:
            cp = cls(
                tree_size=int(obj["tree_size"]),
                root_hash=str(obj["root_hash"]),
                timestamp=str(obj["timestamp"]),
                key_id=str(obj["key_id"]),
                public_key=str(obj["public_key"]),
                signature=str(obj["signature"]),
                label=label,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{label} is not a signed checkpoint (missing or bad {exc})",
                hint="it needs tree_size, root_hash, timestamp, key_id, public_key and signature",
            ) from None
        if cp.tree_size < 0:
            raise InputError(f"{label} has a negative tree size", hint="give a checkpoint kuzet signed")
        return cp

    def signature_ok(self) -> bool:
        """Whether the checkpoint is signed by the key it names (and that key has the id it names)."""
        if not self.public_key or key_id_of_safe(self.public_key) != self.key_id:
            return False
        message = checkpoint_message(self.tree_size, self.root_hash, self.timestamp, self.public_key)
        return verify_with(self.public_key, message, self.signature)

    def to_json(self) -> dict[str, str | int]:
        """The checkpoint as JSON (the same object it was read from)."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }


def key_id_of_safe(public_hex: str) -> str:
    """`key_id_of`, or "" for a value that is not hex."""
    try:
        return key_id_of(public_hex)
    except ValueError:
        return ""


def load_trusted(path: Path) -> list[TrustedCheckpoint]:
    """Signed checkpoints from a file: one JSON object, a JSON list, or JSON lines (a witness's file).

    Raises:
        InputError: The file is unreadable or holds something else.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}", hint="give a file of signed checkpoints") from None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return [TrustedCheckpoint.from_json(whole, label=str(path))]
    if isinstance(whole, list):
        return [TrustedCheckpoint.from_json(o, label=f"{path} item {i + 1}") for i, o in enumerate(whole)]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path} line {n} is not JSON", hint="give a file of signed checkpoints") from None
        out.append(TrustedCheckpoint.from_json(obj, label=f"{path} line {n}"))
    if not out:
        raise InputError(f"{path} holds no checkpoint", hint="give what `kuzet audit checkpoint --json` prints")
    return out


class _Fail(Exception):
    def __init__(self, first_bad: int, problem: str) -> None:
        super().__init__(problem)
        self.first_bad = first_bad
        self.problem = problem


@dataclass(slots=True)
class _Checked:
    entries: int = 0
    checkpoints: int = 0


Fresh = Callable[[], AbstractContextManager[Session]]


def verify_ledger(
    session: Session,
    signer: LedgerSigner,
    *,
    log_file: Path | None = None,
    trusted: Iterable[TrustedCheckpoint] = (),
    fresh: Fresh | None = None,
) -> VerifyReport:
    """Check the whole ledger (see the module docstring); run it in a read transaction (`Database.read`).

    `fresh` opens a new read transaction: while the ledger is verified, others go on committing, and a checkpoint
    the outside copy marks committed but this transaction's snapshot lacks is looked up again, after the copy was
    read, before it counts as removed.
    """
    trusted = list(trusted)
    done = _Checked()
    try:
        leaves, rotations = _check_entries(session, done)
        db_checkpoints, newest_key = _check_checkpoints(session, signer, leaves, rotations, done)
        if log_file is not None:
            _check_log(CheckpointLog(log_file), db_checkpoints, fresh)
        _check_trusted(trusted, leaves, rotations, newest_key)
    except _Fail as fail:
        return VerifyReport(False, done.entries, done.checkpoints, fail.first_bad, fail.problem, len(trusted))
    return VerifyReport(True, done.entries, done.checkpoints, 0, "", len(trusted))


def _check_entries(session: Session, done: _Checked) -> tuple[list[bytes], list[KeyRotation]]:
    leaves: list[bytes] = []
    rotations: list[KeyRotation] = []
    prev = GENESIS
    query = select(AuditEntryRow).order_by(AuditEntryRow.seq).execution_options(yield_per=BATCH)
    # closing: a check that stops early must release the server-side cursor the rows stream from (PostgreSQL)
    with closing(session.scalars(query)) as rows:
        for row in rows:
            _check_entry(row, len(leaves) + 1, prev, rotations)
            prev = row.entry_hash
            leaves.append(bytes.fromhex(row.entry_hash))
            done.entries = len(leaves)
    return leaves, rotations


def _check_entry(row: AuditEntryRow, expected: int, prev: str, rotations: list[KeyRotation]) -> None:
    """One entry in its place in the chain; a valid key hand-over is added to `rotations`."""
    if row.seq != expected:
        what = "missing" if row.seq > expected else "duplicated"
        raise _Fail(expected, f"entry {expected} is {what} (found {row.seq} next)")
    if row.prev_hash != prev:
        raise _Fail(row.seq, f"entry {row.seq} does not follow entry {row.seq - 1}: the chain is broken")
    if _row_hash(row) != row.entry_hash:
        raise _Fail(row.seq, f"entry {row.seq} was altered: its hash does not match")
    if row.action == KEY_ROTATED:
        rotation = KeyRotation.from_entry(row.seq, row.details)
        if rotation is None or not rotation.valid():
            raise _Fail(row.seq, f"entry {row.seq} records a key hand-over that the old key did not sign")
        rotations.append(rotation)


def _check_checkpoints(
    session: Session, signer: LedgerSigner, leaves: list[bytes], rotations: list[KeyRotation], done: _Checked
) -> tuple[dict[tuple[int, str], int], str]:
    """Every checkpoint against the entries; returns {(id, root): size} and the newest checkpoint's key."""
    rows = session.execute(
        select(
            CheckpointRow.id,
            CheckpointRow.tree_size,
            CheckpointRow.root_hash,
            CheckpointRow.ts,
            CheckpointRow.key_id,
            CheckpointRow.signature,
            CheckpointRow.public_key,
        )
        .order_by(CheckpointRow.tree_size, CheckpointRow.id)
        .execution_options(yield_per=BATCH)
    )
    with closing(rows):
        return _walk_checkpoints(rows, signer, leaves, rotations, done)


def _walk_checkpoints(
    rows: Iterable[Any], signer: LedgerSigner, leaves: list[bytes], rotations: list[KeyRotation], done: _Checked
) -> tuple[dict[tuple[int, str], int], str]:
    frontier = merkle.Frontier()
    seen: dict[tuple[int, str], int] = {}
    prev_id, prev_size, prev_key = 0, 0, ""
    newest_id, newest_key, newest_size = 0, "", 0
    for cp_id, size, root_hex, ts, key_id, signature, public_key in rows:
        key = public_key or signer.public_hex  # checkpoints from before keys were named: the data directory's key
        message = checkpoint_message(size, root_hex, ts, public_key)
        if (public_key and key_id_of_safe(public_key) != key_id) or not verify_with(key, message, signature):
            raise _Fail(0, f"checkpoint {cp_id} has a bad signature")
        if cp_id < prev_id:
            raise _Fail(0, f"checkpoint {cp_id} covers {size} entries, more than the later checkpoint {prev_id}")
        if size > len(leaves):
            raise _Fail(
                len(leaves) + 1,
                f"checkpoint {cp_id} covers {size} entries but the ledger holds {len(leaves)}: entries were removed",
            )
        while frontier.size < size:
            frontier.append(leaves[frontier.size])
        if frontier.root().hex() != root_hex:
            raise _Fail(1, f"entries 1..{size} do not match checkpoint {cp_id}: the ledger was rewritten")
        if (
            prev_key
            and key != prev_key
            and not any(
                r.old_public_key == prev_key and r.new_public_key == key and prev_size < r.seq <= size
                for r in rotations
            )
        ):
            raise _Fail(
                0,
                f"checkpoint {cp_id} is signed by key {key_id_of_safe(key)}, not by {key_id_of_safe(prev_key)} like "
                "the one before it, and no hand-over signed by the old key says so",
            )
        prev_id, prev_size, prev_key = cp_id, size, key
        seen[(cp_id, root_hex)] = size
        if cp_id > newest_id:
            newest_id, newest_key, newest_size = cp_id, key, size
        done.checkpoints = len(seen)
    if leaves and newest_size < len(leaves):
        covered = (
            f"the newest checkpoint ({newest_id}) covers {newest_size}" if newest_id else "no checkpoint covers any"
        )
        raise _Fail(
            newest_size + 1,
            f"entries {newest_size + 1}..{len(leaves)} are not covered by a signed checkpoint ({covered}): "
            "checkpoints were removed",
        )
    if newest_key and newest_key != signer.public_hex:
        raise _Fail(
            0,
            f"the signing key in keys/ ({signer.key_id}) is not the key of the newest checkpoint "
            f"({key_id_of_safe(newest_key)}): the key was replaced without `kuzet audit rotate-key`",
        )
    return seen, newest_key


def _check_log(log: CheckpointLog, db_checkpoints: dict[tuple[int, str], int], fresh: Fresh | None) -> None:
    name = log.path.name
    if not log.exists():
        if db_checkpoints:
            raise _Fail(0, f"{name}, the outside copy of the checkpoints, is missing")
        return
    contents = log.read()  # read after the snapshot began: everything the snapshot holds was written ahead here
    if contents.problem:
        raise _Fail(0, contents.problem)
    unknown = [k for k in contents.committed if k not in db_checkpoints]
    if unknown and fresh is not None:
        with fresh() as later:  # committed after the snapshot began (and before the copy was read)?
            ids = [k[0] for k in unknown]
            now = set(later.execute(select(CheckpointRow.id, CheckpointRow.root_hash).where(CheckpointRow.id.in_(ids))))
        unknown = [k for k in unknown if (k[0], k[1]) not in now]
    for cp_id, root_hex in unknown:
        size = contents.committed[(cp_id, root_hex)]
        raise _Fail(
            0,
            f"checkpoint {cp_id} ({size} entries) in {name} is missing or different in the database: "
            "checkpoints and entries were removed or rewritten",
        )
    listed = contents.committed.keys() | contents.prepared.keys()
    missing = [k for k in db_checkpoints if k not in listed]
    if missing:
        cp_id = min(k[0] for k in missing)
        raise _Fail(
            0, f"checkpoint {cp_id} of the database is not in {name}: the outside copy is behind or was cut back"
        )


def _check_trusted(
    trusted: list[TrustedCheckpoint], leaves: list[bytes], rotations: list[KeyRotation], newest_key: str
) -> None:
    frontier = merkle.Frontier()
    for tc in sorted(trusted, key=lambda t: t.tree_size):
        where = f"trusted checkpoint {tc.label} ({tc.tree_size} entries, root {tc.root_hash[:16]})"
        if not tc.signature_ok():
            raise _Fail(0, f"{where} is not validly signed by the key it names")
        if tc.tree_size > len(leaves):
            raise _Fail(
                len(leaves) + 1,
                f"{where} is contradicted: the ledger holds only {len(leaves)} entries (it was cut back)",
            )
        while frontier.size < tc.tree_size:
            frontier.append(leaves[frontier.size])
        if frontier.root().hex() != tc.root_hash:
            raise _Fail(1, f"{where} is contradicted: entries 1..{tc.tree_size} were rewritten since it was signed")
        if newest_key and tc.public_key != newest_key and rotation_chain(rotations, tc.public_key, newest_key) is None:
            raise _Fail(
                0,
                f"{where} is signed by key {tc.key_id}, but the ledger is now signed by "
                f"{key_id_of_safe(newest_key)} and no hand-over signed by the old key leads there",
            )
