"""Database engine, migrations and sessions: SQLite in WAL mode (the embedded default) or PostgreSQL (psycopg 3).

Writes are serialised on both engines, so the audit ledger's hash chain has one order however many processes (or
machines) write: SQLite takes its write lock at BEGIN; on PostgreSQL every write transaction first takes one
transaction-level advisory lock, released at commit or rollback. Reads take no lock on either: a WAL snapshot on
SQLite, a read-only REPEATABLE READ transaction on PostgreSQL.
"""

from __future__ import annotations

import importlib.resources
import os
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Dialect, Engine, Select, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from kuzet.config.models import DatabaseConfig
from kuzet.core.errors import StoreError
from kuzet.store.files import FILE_MODE, tighten
from kuzet.store.turns import WriterTurns

_DEADLINE: ContextVar[float | None] = ContextVar("kuzet_read_deadline", default=None)
"""When `Database.fetch` must give up (`time.perf_counter()`), inside a `Database.budget` block; None: never."""
PROGRESS_STEPS = 2000
"""SQLite virtual-machine steps between two looks at the clock while a read runs under a budget."""


class OverBudget(Exception):
    """A read under `Database.budget` ran past its time; nothing was written: run the work again where it may wait."""


BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite statement waits for a lock another process holds (reads under a budget: the budget only)."""
_STOPPED = (sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY)
"""The progress handler stopped the read; a lock outlasted the budget."""


def _bound(driver: Any, deadline: float) -> None:
    """Stop reads on this SQLite connection once `deadline` has passed, waiting for a lock included."""
    driver.set_progress_handler(lambda: time.perf_counter() > deadline, PROGRESS_STEPS)
    wait_ms = max(1, int(1000 * (deadline - time.perf_counter())))
    driver.execute(f"PRAGMA busy_timeout={wait_ms}")  # SQLite's busy wait never calls the progress handler


def _unbound(driver: Any) -> None:
    """Undo `_bound` before the connection goes back to the pool."""
    driver.set_progress_handler(None, 0)
    driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _over_budget(exc: Exception) -> bool:
    """Whether a read under a budget failed because the budget stopped it (not for any other database error)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _STOPPED


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite's implicit transactions are off).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed transaction (an action and its audit entry) survives a power cut, not only a crash.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def _begin_immediate(conn: Any) -> None:
    # Take the write lock at the start of every transaction, so that two processes appending to the audit
    # ledger are serialised instead of both reading the same "last entry".
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _query_only(dbapi_conn: Any, _record: Any) -> None:
    # The read engine's connections refuse every write for as long as they live (set once, not per transaction).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _begin_deferred(conn: Any) -> None:
    # A read: no lock is taken; in WAL mode the transaction reads one consistent snapshot while writers go on.
    conn.exec_driver_sql("BEGIN")


def _sqlite_file(url: str) -> Path | None:
    """The database file an SQLite URL names (None for an in-memory database or another engine)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///"))


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file owner-only before SQLite does (its -wal and -shm files copy the file's mode)."""
    path = _sqlite_file(url)
    if path is not None and path.parent.is_dir():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        for suffix in ("", "-wal", "-shm"):
            tighten(path.with_name(path.name + suffix))


WRITE_LOCK = 0x6B757A6574  # "kuzet"
"""The PostgreSQL advisory lock every write transaction holds (one writer at a time, across every machine)."""
PIPELINE = "kuzet_pipeline"
"""`Session.info` key of the driver connection of a session in pipeline mode (`Database.session(pipelined=True)`)."""


def _pipelines(dialect: Dialect) -> bool:
    """Whether the dialect's driver has a pipeline mode: psycopg 3, over libpq 14 or newer (psycopg2 has none)."""
    if dialect.driver != "psycopg":
        return False
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def normalised(url: str) -> str:
    """The SQLAlchemy URL for `url`: postgresql:// and postgres:// mean psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def redact_db_url(url: str) -> str:
    """`url` without its password (for messages and logs)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


IDLE_PING_S = 1.0
"""A pooled PostgreSQL read connection left unused this long is checked (one round trip) before its next use."""


class _Dropped(Exception):
    """The server had dropped the connection a read was given (`Database.fetch` runs it once more)."""


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection at checkout only when it has been idle for `IDLE_PING_S` or more.

    SQLAlchemy's `pool_pre_ping` checks every connection at every checkout: a round trip more for each read, about 6%
    of the audited requests PostgreSQL answers (docs/performance.md). Under load a connection is back in use
    within milliseconds and is not checked; after a quiet second (a restart takes longer) it is, and one the server
    dropped is replaced before anyone uses it. A connection dropped while busy is found by the read that fails on it
    (`Database.fetch` runs it again; SQLAlchemy empties the pool for a session's).
    """
    dbapi = engine.dialect.loaded_dbapi

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["kuzet_idle_since"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("kuzet_idle_since", float("inf")) < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except dbapi.Error as exc:
            raise DisconnectionError(f"a pooled connection was dropped: {exc}") from exc  # the pool connects anew

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


HEAD_REVISION = "0009"
"""The newest migration in `store/migrations/versions` (a test checks they agree)."""


class Database:
    """An engine plus a session factory; `migrate()` brings the schema to the newest revision."""

    def __init__(self, url: str, settings: DatabaseConfig | None = None) -> None:
        self.url = normalised(url)
        self.postgres = self.url.startswith("postgresql")
        cfg = settings or DatabaseConfig()
        self.lock_timeout_ms = int(cfg.lock_timeout_s * 1000)
        if self.postgres:
            options = f"-c statement_timeout={int(cfg.statement_timeout_s * 1000)} -c timezone=UTC"
            # the write lock's timeout: set once per connection, not by a statement in every transaction
            writes = f"{options} -c lock_timeout={self.lock_timeout_ms}"
            kwargs: dict[str, Any] = {
                "connect_args": {"options": writes, "application_name": "kuzet", "connect_timeout": 10},
                "pool_size": cfg.pool_size,
                "max_overflow": cfg.max_overflow,
                "pool_pre_ping": True,  # a connection the server dropped (a restart) is replaced, not used
            }
        else:
            _private_sqlite_file(self.url)
            kwargs = {"connect_args": {"check_same_thread": False}}
            if self.url.startswith("sqlite:///"):
                # as many pooled connections as the API's worker threads (40): an overflow connection is closed at
                # check-in, and opening one again (with its pragmas) under load costs more than keeping it
                kwargs |= {"pool_size": 48, "max_overflow": 32}
        self.engine: Engine = create_engine(self.url, **kwargs)
        self.pipelines = self.postgres and _pipelines(self.engine.dialect)
        """Whether `session(pipelined=True)` uses the driver's pipeline mode (psycopg 3 over libpq 14 or newer)."""
        # Reads have an engine of their own, whose transactions take no lock (see `read`) and, on PostgreSQL, are
        # READ ONLY by the connection's default, whether a session's transaction or a statement of `fetch`.
        if self.postgres:  # no ping at every checkout: see `_ping_when_idle` and `fetch`
            read_only = f"{options} -c default_transaction_read_only=on"
            connect = kwargs["connect_args"] | {"options": read_only}
            kwargs = kwargs | {"connect_args": connect, "pool_pre_ping": False}
        self.read_engine: Engine = create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            for engine, begin in ((self.engine, _begin_immediate), (self.read_engine, _begin_deferred)):
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", begin)
            event.listen(self.read_engine, "connect", _query_only)
        else:  # every read transaction is REPEATABLE READ and READ ONLY, set on the connection (no extra statement)
            _ping_when_idle(self.read_engine)
            self.read_engine = self.read_engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reads = sessionmaker(self.read_engine, expire_on_commit=False)
        self._compiled: dict[int, _CompiledRead] = {}
        # Every transaction takes the write lock at BEGIN; threads of this process queue here first, which is
        # fairer and cheaper than the database's own waiting (other processes still meet the lock timeout).
        self._writer = threading.RLock()
        # SQLite: processes on one file take turns at its write lock (see `store.turns`).
        file = _sqlite_file(self.url)
        self._turns = WriterTurns(file, cfg.lock_timeout_s) if file is not None else None

    def _write_lock(self, conn: Any) -> None:
        """PostgreSQL: wait for the one write lock, held until the transaction ends (connections carry the timeout)."""
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied (a quick version check skips Alembic when current)."""
        try:
            with self.engine.connect() as conn:
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if current == HEAD_REVISION:
                return
        except (OperationalError, ProgrammingError):
            pass  # a new database: no version table yet (or the server is unreachable: said below)
        from alembic import command
        from alembic.config import Config

        script_dir = importlib.resources.files("kuzet.store").joinpath("migrations")
        cfg = Config()
        cfg.set_main_option("script_location", str(script_dir))
        try:
            with self.engine.begin() as conn:
                if self.postgres:
                    self._write_lock(conn)  # two processes starting at once migrate one after the other
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            hint = (
                "check that PostgreSQL is running and the URL, user and password are right"
                if self.postgres
                else "check that the data directory is writable and not on a network share"
            )
            raise StoreError(
                f"cannot open or migrate the database at {redact_db_url(self.url)}: {exc.orig}", hint=hint
            ) from None

    @property
    def writer_lock(self) -> threading.RLock:
        """The lock that lets one thread of this process write at a time (reentrant; `session` takes it too).

        Hold it across a commit and what must follow the commits in their order: queuing the checkpoint for the
        witnesses.
        """
        return self._writer

    @contextmanager
    def session(self, *, pipelined: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.

        `pipelined` (PostgreSQL; no difference on SQLite): the driver connection is put in pipeline mode, with the
        write lock queued behind the transaction's start, and left under `session.info[PIPELINE]`: statements run on
        it are sent together until one's answer is needed. SQLAlchemy's own statements cannot run in such a session
        (their results want the answer at once): it is for the ledger's batch (`kuzet.audit.ledger_sql`).
        """
        try:
            with self._writer, self._turn(), self._sessions() as session, session.begin():
                if pipelined and self.pipelines:
                    with self._pipeline(session):
                        yield session
                    return
                if self.postgres:
                    self._write_lock(session.connection())
                yield session
        except DBAPIError as exc:
            raise self._unavailable(exc, writing=True) from None

    @contextmanager
    def _pipeline(self, session: Session) -> Iterator[None]:
        """`session`'s driver connection in pipeline mode, the write lock queued first; its errors as SQLAlchemy's.

        A connection the server dropped is invalidated here, so that the error raised is the server's, not the one
        the rollback would meet on the dead connection. The block must leave the transaction open: one whose error
        went unnoticed (an answer nobody fetched) would otherwise be "committed" as a rollback, silently.
        """
        from psycopg.pq import TransactionStatus

        dbapi = self.engine.dialect.loaded_dbapi
        conn = session.connection()
        driver: Any = conn.connection.driver_connection
        try:
            with driver.pipeline():
                driver.execute("SELECT pg_advisory_xact_lock(%(k)s)", {"k": WRITE_LOCK})
                session.info[PIPELINE] = driver
                try:
                    yield
                finally:
                    session.info.pop(PIPELINE, None)
        except dbapi.Error as exc:
            invalidated = self.engine.dialect.is_disconnect(exc, driver, None)
            if invalidated:
                conn.invalidate(exc)
            raise DBAPIError.instance(None, None, exc, dbapi.Error, connection_invalidated=invalidated) from None
        if driver.info.transaction_status != TransactionStatus.INTRANS:
            raise StoreError(
                f"the ledger's batch ended with its transaction {driver.info.transaction_status.name}: not committed",
                hint="retry in a moment; if it happens again, report it with the server's log",
            )

    def _turn(self) -> AbstractContextManager[None]:
        return self._turns.turn() if self._turns is not None else nullcontext()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: takes no write lock, so it never blocks writers (or waits for them).

        The transaction sees one snapshot of the database for as long as it lasts (SQLite in WAL mode; PostgreSQL
        REPEATABLE READ); anything written through it is refused by the database.
        """
        try:
            with self._reads() as session, session.begin():
                yield session
        except DBAPIError as exc:
            raise self._unavailable(exc, writing=False) from None

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """SQLite reads through `fetch` in this block stop with `OverBudget` once `seconds` have passed.

        For work done on an event loop, which nothing else can use while a query runs (`api.deps.on_loop`). Other
        reads and every write are not bounded; on PostgreSQL nothing is (its work goes to a thread anyway).
        """
        token = _DEADLINE.set(time.perf_counter() + seconds)
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    def fetch(self, stmt: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> list[Any]:
        """The rows of one read-only statement, run on the database driver itself (no session, no transaction object).

        For the statements every API request runs (the session check, the events listing): the ORM's session and
        Core's execution machinery cost ten times the query itself. The statement is compiled once per database;
        its parameters and columns go through the same SQLAlchemy type conversions as everywhere else. Rows are named
        tuples (`row.name`). The connection is a read connection (SQLite: `query_only`; PostgreSQL: READ ONLY by
        default, the statement in a transaction of its own), so nothing can be written through it. Under `budget`,
        SQLite stops the statement once the budget is spent (`OverBudget`).

        On PostgreSQL a pooled connection is not checked before each use (`_ping_when_idle`): one the server dropped
        (a restart under load) is found when the statement fails on it. Then the pool, whose connections are all as
        old, is emptied and the statement runs once more on a new connection; it only reads, so running it twice is
        harmless.
        """
        read = self._compiled.get(id(stmt))
        if read is None or read.stmt is not stmt:
            read = self._compiled[id(stmt)] = _CompiledRead(stmt, self.read_engine.dialect)
        try:
            return self._fetch(read, params, again=self.postgres)
        except _Dropped:
            self.read_engine.dispose()
            return self._fetch(read, params, again=False)

    def _fetch(self, read: _CompiledRead, params: Mapping[str, Any], *, again: bool) -> list[Any]:
        """One try of `fetch`; `_Dropped` when `again` and the server had dropped the connection."""
        dbapi = self.read_engine.dialect.loaded_dbapi
        conn = self.read_engine.raw_connection()
        deadline = None if self.postgres else _DEADLINE.get()
        driver: Any = conn.driver_connection
        try:
            if deadline is not None:
                _bound(driver, deadline)
            cursor = conn.cursor()
            if self.postgres:  # one statement is its own snapshot: no BEGIN and ROLLBACK, two round trips fewer
                driver.autocommit = True
            cursor.execute(read.sql, read.bind(params))
            read.describe(cursor.description)
            found = cursor.fetchall()
            cursor.close()
        except dbapi.Error as exc:
            if deadline is not None and _over_budget(exc):
                raise OverBudget(f"a read ran past its budget: {read.sql[:80]}") from None
            if again and self.read_engine.dialect.is_disconnect(exc, driver, None):
                conn.invalidate(exc)
                raise _Dropped from exc
            wrapped = DBAPIError.instance(read.sql, None, exc, dbapi.Error)
            raise (self._unavailable(wrapped, writing=False) if isinstance(wrapped, DBAPIError) else wrapped) from None
        finally:
            try:
                if deadline is not None:
                    _unbound(driver)
                if self.postgres and not (driver.closed or driver.broken):
                    driver.autocommit = False
            finally:
                conn.close()  # back to the pool
        return [read.converted(r) for r in found]

    def _unavailable(self, exc: DBAPIError, *, writing: bool) -> Exception:
        """The StoreError for a busy or unreachable database; any other database error unchanged."""
        text_ = str(exc.orig)
        if "locked" in text_ or "busy" in text_ or "lock timeout" in text_:
            what = "the database is busy (another process holds its write lock)" if writing else "the database is busy"
            return StoreError(what, hint="retry in a moment")
        if self.postgres and isinstance(exc, OperationalError):
            return StoreError(
                f"the database at {redact_db_url(self.url)} cannot be reached: {text_.strip().splitlines()[0]}",
                hint="check that PostgreSQL is running; kuzet retries on the next action",
            )
        return exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.read_engine.dispose()
        if self._turns is not None:
            self._turns.close()


def _row_type(names: list[str]) -> Callable[..., Any]:
    """A named tuple type with these fields (a row of `Database.fetch`)."""
    return namedtuple("Row", names)


class _CompiledRead:
    """A SELECT compiled once for one database, with SQLAlchemy's own converters for its parameters and columns."""

    def __init__(self, stmt: Select[*tuple[Any, ...]], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.stmt = stmt  # kept, so that the id it is cached under is never another statement's
        self.sql = str(compiled)
        self.positional = compiled.positional
        self.names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        self.binders: dict[str, Callable[[Any], Any] | None] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
        }
        self.dialect = dialect
        self.columns = list(stmt.selected_columns)
        self.row = _row_type([c.key or f"c{i}" for i, c in enumerate(self.columns)])
        self.results: list[Callable[[Any], Any] | None] | None = None

    def describe(self, description: Any) -> None:
        """The column converters, made on the first execution (some depend on the type the driver reports)."""
        if self.results is None:
            d = self.dialect
            self.results = [
                c.type.dialect_impl(d).result_processor(d, col[1])
                for c, col in zip(self.columns, description, strict=True)
            ]

    def converted(self, raw: tuple[Any, ...]) -> Any:
        """A row from the driver as a named tuple of converted values."""
        assert self.results is not None, "describe() first"
        return self.row(*[f(v) if f is not None else v for f, v in zip(self.results, raw, strict=True)])

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The driver's parameters: converted, in the order (or under the names) the compiled SQL wants."""
        values = {}
        for name in self.names:
            f, v = self.binders[name], params[name]
            values[name] = f(v) if f is not None and v is not None else v
        return tuple(values[n] for n in self.names) if self.positional else values
