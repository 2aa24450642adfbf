"""The ledger's statements for a batch of entries, run on the database driver itself in PostgreSQL's pipeline mode.

Under load the ledger's batch is what every audited request waits for, and the database's write lock is held from the
head's read to the commit, while every other process waits for it. Each statement's round trip in that stretch waits
for a busy machine to run the database and then this thread again: about a millisecond each at 1,000 requests/s on
two cores. In pipeline mode the driver sends statements without waiting for their answers until one is needed
(`Database.session(pipelined=True)`): the transaction's start, the lock and the head's read go as one round trip, the
entries and the checkpoint as a second, then the commit. SQLAlchemy's results want their answer at once, so these
statements are run on the driver; they are compiled by SQLAlchemy from the same table definitions, once per dialect.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Dialect, bindparam, insert, select
from sqlalchemy.orm import Session

from kuzet.store.db import PIPELINE
from kuzet.store.models import AuditEntryRow, CheckpointRow

_CHECKPOINT_COLUMNS = ("tree_size", "root_hash", "ts", "key_id", "signature", "public_key")


class DriverStatements:
    """The batch's statements compiled for one dialect (every value they take and give is a plain int or str)."""

    def __init__(self, dialect: Dialect) -> None:
        def sql(stmt: Any, **kw: bool) -> str:
            return str(stmt.compile(dialect=dialect, compile_kwargs=kw))

        seq, entry_hash = AuditEntryRow.seq, AuditEntryRow.entry_hash
        self.hashes_sql = sql(select(seq, entry_hash).where(seq >= bindparam("first")).order_by(seq))
        self.head_sql = sql(select(seq, entry_hash).order_by(seq.desc()).limit(1), literal_binds=True)
        self.entries_sql = sql(insert(AuditEntryRow))
        values: dict[str, Any] = {c: bindparam(c) for c in _CHECKPOINT_COLUMNS}
        self.checkpoint_sql = sql(insert(CheckpointRow).values(values).returning(CheckpointRow.id))

    def hashes(self, driver: Any, first: int) -> list[tuple[int, str]]:
        """(seq, entry_hash) of the entries numbered `first` and after, in order (waits for the answer)."""
        return [(int(s), str(h)) for s, h in driver.execute(self.hashes_sql, {"first": first}).fetchall()]

    def head(self, driver: Any) -> tuple[int, str] | None:
        """(seq, entry_hash) of the last entry (waits for the answer)."""
        row = driver.execute(self.head_sql).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def insert_entries(self, driver: Any, rows: list[dict[str, Any]]) -> None:
        """Queue the rows' insert (sent with the next statement whose answer is needed)."""
        with driver.cursor() as cursor:
            cursor.executemany(self.entries_sql, rows)

    def insert_checkpoint(self, driver: Any, values: dict[str, Any]) -> int:
        """Insert the checkpoint; its id (waits for the answer, and so for everything queued before it)."""
        row = driver.execute(self.checkpoint_sql, {c: values[c] for c in _CHECKPOINT_COLUMNS}).fetchone()
        if row is None:
            raise RuntimeError("the database gave no id for the new checkpoint")
        return int(row[0])


_COMPILED: dict[str, DriverStatements] = {}


def pipelined(session: Session) -> tuple[Any, DriverStatements] | None:
    """The driver connection and the statements for it when `session` is in pipeline mode; None otherwise."""
    driver = session.info.get(PIPELINE)
    if driver is None:
        return None
    dialect = session.get_bind().dialect
    statements = _COMPILED.get(dialect.name)
    if statements is None:
        statements = _COMPILED[dialect.name] = DriverStatements(dialect)
    return driver, statements
