"""Database engine, migrations and sessions (SQLite in WAL mode by default; any SQLAlchemy URL works)."""

from __future__ import annotations

import importlib.resources
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kuzet.core.errors import StoreError
from kuzet.store.files import FILE_MODE, tighten


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite's implicit transactions are off).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed transaction (an action and its audit entry) survives a power cut, not only a crash.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _begin_immediate(conn: Any) -> None:
    # Take the write lock at the start of every transaction, so that two processes appending to the audit
    # ledger are serialised instead of both reading the same "last entry".
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_deferred(conn: Any) -> None:
    # A read: no lock is taken; in WAL mode the transaction reads one consistent snapshot while writers go on.
    conn.exec_driver_sql("BEGIN")


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file owner-only before SQLite does (its -wal and -shm files copy the file's mode)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return
    path = Path(url.removeprefix("sqlite:///"))
    if path.parent.is_dir():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        for suffix in ("", "-wal", "-shm"):
            tighten(path.with_name(path.name + suffix))


HEAD_REVISION = "0005"
"""The newest migration in `store/migrations/versions` (a test checks they agree)."""


class Database:
    """An engine plus a session factory; `migrate()` brings the schema to the newest revision."""

    def __init__(self, url: str) -> None:
        self.url = url
        _private_sqlite_file(url)
        connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
        pool = {"pool_size": 16, "max_overflow": 48} if url.startswith("sqlite:///") else {}
        self.engine: Engine = create_engine(url, future=True, connect_args=connect_args, **pool)
        # Reads have an engine of their own, whose transactions take no lock (see `read`).
        self.read_engine: Engine = create_engine(url, future=True, connect_args=connect_args, **pool)
        if url.startswith("sqlite"):
            for engine, begin in ((self.engine, _begin_immediate), (self.read_engine, _begin_deferred)):
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reads = sessionmaker(self.read_engine, expire_on_commit=False)
        # Every transaction takes SQLite's write lock at BEGIN; threads of this process queue here first, which is
        # fairer and cheaper than SQLite's sleeping busy handler (other processes still meet the busy timeout).
        self._writer = threading.RLock()

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied (a quick version check skips Alembic when current)."""
        try:
            with self.engine.connect() as conn:
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if current == HEAD_REVISION:
                return
        except OperationalError:
            pass  # a new database: no version table yet
        from alembic import command
        from alembic.config import Config

        script_dir = importlib.resources.files("kuzet.store").joinpath("migrations")
        cfg = Config()
        cfg.set_main_option("script_location", str(script_dir))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(
                f"cannot open or migrate the database at {self.url}: {exc.orig}",
                hint="check that the data directory is writable and not on a network share",
            ) from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        try:
            with self._writer, self._sessions() as session, session.begin():
                yield session
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise StoreError(
                    "the database is busy (another process holds its write lock)", hint="retry in a moment"
                ) from None
            raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: takes no write lock, so it never blocks writers (or waits for them).

        On SQLite in WAL mode the transaction sees one snapshot of the database for as long as it lasts; anything
        written through it is refused by the database.
        """
        try:
            with self._reads() as session, session.begin():
                if self.url.startswith("sqlite"):
                    session.execute(text("PRAGMA query_only=ON"))
                try:
                    yield session
                finally:
                    if self.url.startswith("sqlite"):
                        session.execute(text("PRAGMA query_only=OFF"))
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise StoreError("the database is busy", hint="retry in a moment") from None
            raise

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.read_engine.dispose()
