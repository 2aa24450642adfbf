"""The outside copy of every checkpoint: `DATA_DIR/audit/checkpoints.jsonl`, written ahead of each commit.

Each transaction that signs a checkpoint writes it here as `prepared` (flushed to disk) before the database commits,
then marks it `committed` after. So the file is never behind the database, whatever moment a crash comes at:

| crash | file | database |
|---|---|---|
| before `prepared` | nothing | nothing (rolled back) |
| between `prepared` and the commit | prepared | nothing: a prepared checkpoint the database lacks never committed |
| between the commit and `committed` | prepared | the checkpoint: present, so the file is not behind |

A `committed` checkpoint that the database lacks, or a database checkpoint the file lacks, means someone removed
or rewrote checkpoints and entries: `kuzet audit verify` reports it. (Whoever can write this file can rewrite it
too: witnesses outside this machine are what catch that; see docs/governance.md.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kuzet.audit.ledger import Checkpoint
from kuzet.store.files import append_private, private_dir

PREPARED, COMMITTED, ROLLED_BACK = "prepared", "committed", "rolled_back"


@dataclass(slots=True)
class LogContents:
    """What the file says: (id, root) of checkpoints prepared and committed, or the first problem found."""

    prepared: dict[tuple[int, str], int] = field(default_factory=dict)
    """(checkpoint id, root) -> tree size."""
    committed: dict[tuple[int, str], int] = field(default_factory=dict)
    problem: str = ""


class CheckpointLog:
    """Appends to and reads `checkpoints.jsonl` (owner-only; a prepared line is flushed to disk before its commit)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, record: dict[str, object], *, sync: bool) -> None:
        private_dir(self.path.parent)
        append_private(self.path, json.dumps(record, sort_keys=True), sync=sync)

    def prepare(self, cp: Checkpoint) -> None:
        """Record a checkpoint about to be committed (call inside the transaction), flushed to disk."""
        self._append({"id": cp.checkpoint_id, "state": PREPARED, **cp.signed_json()}, sync=True)

    def committed(self, cp: Checkpoint) -> None:
        """Mark a prepared checkpoint as committed.

        Written, not flushed to disk: a crash that loses the mark leaves the checkpoint prepared, which the table above
        allows (the next `prepare` flushes it). That spares each ledger batch a second disk flush.
        """
        self._append({"id": cp.checkpoint_id, "state": COMMITTED, "root_hash": cp.root_hash}, sync=False)

    def rolled_back(self, cp: Checkpoint) -> None:
        """Mark a prepared checkpoint whose transaction failed (not flushed either: prepared only is allowed)."""
        self._append({"id": cp.checkpoint_id, "state": ROLLED_BACK, "root_hash": cp.root_hash}, sync=False)

    def exists(self) -> bool:
        """Whether the file is there."""
        return self.path.is_file()

    def read(self) -> LogContents:
        """Parse the file; a line torn by a crash is tolerated only at its very end."""
        out = LogContents()
        name = self.path.name
        with self.path.open(encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        for n, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines):
                    break  # torn while it was written; nothing after it
                out.problem = f"{name} line {n} is corrupt"
                return out
            if not isinstance(record, dict):
                out.problem = f"{name} line {n} is not a checkpoint record"
                return out
            try:
                key = (int(record["id"]), str(record["root_hash"]))
                state = str(record.get("state", COMMITTED))  # lines written before write-ahead are committed ones
                size = int(record.get("tree_size", -1))
            except (KeyError, TypeError, ValueError):
                out.problem = f"{name} line {n} is not a checkpoint record"
                return out
            if state == PREPARED:
                out.prepared[key] = size
            elif state == COMMITTED:
                out.committed[key] = size if size >= 0 else out.prepared.get(key, -1)
            elif state == ROLLED_BACK:
                out.prepared.pop(key, None)
            else:
                out.problem = f"{name} line {n} has an unknown state {state!r}"
                return out
        return out
