from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, literal_column, select, text

from kuzet.core.errors import StoreError
from kuzet.store.crypto import DataCipher, key_id
from kuzet.store.db import HEAD_REVISION, Database, OverBudget
from kuzet.store.media import MediaStore
from kuzet.store.repositories.events import EventRepository, NewEvent, RunRecord, list_events
from kuzet.store.repositories.gallery import GalleryRepository, NewTemplate
from tests.support.rawdb import counting_query, new_database

pytestmark = pytest.mark.store

KEY = b"0123456789abcdef0123456789abcdef"
CIPHER = DataCipher({key_id(KEY): KEY}, key_id(KEY), source="test")
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
"""The one clock repositories are given (they never read the time themselves)."""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated store of the test's own (SQLite, or PostgreSQL with --db postgresql)."""
    database = Database(new_database(tmp_path))
    database.migrate()
    yield database
    database.dispose()


def test_migrations_create_schema_and_are_idempotent(db: Database) -> None:
    db.migrate()  # a second run changes nothing
    tables = set(inspect(db.engine).get_table_names())
    assert {"people", "face_templates", "events", "analysis_runs", "alembic_version"} <= tables
    assert {"traffic_passages", "violations"} <= tables
    with db.engine.connect() as c:
        if not db.postgres:
            assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION


def test_templates_round_trip_and_duplicates_are_skipped(db: Database) -> None:
    import datetime

    from kuzet.core.errors import EnrolmentError
    from kuzet.store.models import PersonRow

    v = np.linspace(-1, 1, 128).astype(np.float32)
    with db.session() as s:
        ident, added = GalleryRepository(s).add_templates(
            "Ann",
            [NewTemplate(v, "h1"), NewTemplate(v * 0.5, "h2"), NewTemplate(v, "h1")],
            model="m",
            cipher=CIPHER,
            now=NOW,
        )
    assert added == 2  # the same photo twice is enrolled once
    with pytest.raises(EnrolmentError, match="already enrolled"), db.session() as s:
        GalleryRepository(s).add_templates("Ann", [NewTemplate(v, "h3")], model="m", cipher=CIPHER, now=NOW)
    now = datetime.datetime.now(datetime.UTC)
    with db.read() as s:
        everyone = GalleryRepository(s).load(model="m", cipher=CIPHER)
        active = GalleryRepository(s).load(model="m", cipher=CIPHER, active_at=now)
        other = GalleryRepository(s).load(model="other-model", cipher=CIPHER)
    assert len(everyone) == 2 and everyone.people == [ident]
    assert np.array_equal(everyone.templates[0], v)
    assert len(active) == 0  # pending: matches nobody
    assert len(other) == 0
    with db.session() as s:
        row = s.get(PersonRow, ident.person_id)
        assert row is not None
        row.status = "approved"
    with db.read() as s:
        assert GalleryRepository(s).load(model="m", cipher=CIPHER, active_at=now).people == [ident]
        assert len(GalleryRepository(s).load(model="m", cipher=CIPHER, active_at=now, camera="gate")) == 2


def test_failed_transaction_stores_nothing(db: Database) -> None:
    run = RunRecord("cam", "src", __import__("datetime").datetime.now(), 1, 1, 1, 1, 0)
    with pytest.raises(RuntimeError), db.session() as s:
        GalleryRepository(s).add_templates(
            "Bob", [NewTemplate(np.ones(128, np.float32), "x")], model="m", cipher=CIPHER, now=NOW
        )
        EventRepository(s).save_run(run, [], now=NOW)
        raise RuntimeError("crash mid-way")
    with db.session() as s:
        assert GalleryRepository(s).people() == []
    assert list_events(db) == []


def test_events_filter_by_camera_and_identity(db: Database) -> None:
    import datetime

    with db.session() as s:
        ann, _ = GalleryRepository(s).add_templates(
            "Ann", [NewTemplate(np.ones(128, np.float32), "a")], model="m", cipher=CIPHER, now=NOW
        )
    for cam in ("gate", "hall"):
        run = RunRecord(cam, "src", datetime.datetime.now(datetime.UTC), 10, 2, 2, 1, 1)
        with db.session() as s:
            EventRepository(s).save_run(run, [NewEvent(ann.person_id, "Ann", 0.95, 1.0, 2.0, 3, "x.jpg")], now=NOW)
    # read on the driver (`Database.fetch`): parameters and columns converted as the ORM converts them
    listed = list_events(db)
    assert [e.camera for e in listed] == ["hall", "gate"]  # newest first
    assert [e.camera for e in list_events(db, camera="gate")] == ["gate"]
    assert list_events(db, identity="Nobody") == []
    with db.session() as s:
        stored = [EventRepository(s).get(e.event_id) for e in listed]
    assert listed == stored  # the same events, times and all, as the session's way of reading them
    day = datetime.timedelta(days=1)
    assert len(list_events(db, since=NOW - day, until=NOW + day)) == 2  # datetimes bound as the column stores them
    assert list_events(db, since=NOW + day) == [] and list_events(db, until=NOW - day) == []
    assert [e.camera for e in list_events(db, limit=1, offset=1)] == ["gate"]


def test_media_store_refuses_escaping_paths(tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media")
    rel = media.save_jpeg(np.zeros((10, 10, 3), np.uint8))
    assert media.path(rel).is_file()
    with pytest.raises(StoreError, match="outside"):
        media.path("../../etc/passwd")
    media.delete(rel)
    assert not media.path(rel).exists()


def test_head_revision_constant_matches_migrations() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from kuzet.store.db import HEAD_REVISION

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(__import__("kuzet.store", fromlist=["x"]).__file__).parent / "migrations")
    )
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_ciphertexts_are_bound_to_their_record() -> None:
    from kuzet.core.errors import StoreError

    blob = CIPHER.encrypt(b"template bytes", context="person:1")
    assert CIPHER.decrypt(blob, context="person:1") == b"template bytes"
    with pytest.raises(StoreError, match="wrong or the record was altered"):
        CIPHER.decrypt(blob, context="person:2")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(StoreError, match="wrong or the record was altered"):
        CIPHER.decrypt(tampered, context="person:1")


def test_a_read_transaction_refuses_every_write(db: Database) -> None:
    """Reads cannot write (SQLite `query_only` on the read connections; PostgreSQL READ ONLY), however often reused."""
    from sqlalchemy.exc import DBAPIError

    for _ in range(3):  # pooled connections come back still refusing
        with pytest.raises((DBAPIError, StoreError), match="readonly|read-only|read only"), db.read() as s:
            s.execute(text("UPDATE alembic_version SET version_num = version_num"))
    with db.session() as w:  # the writers' connections are not affected
        w.execute(text("UPDATE alembic_version SET version_num = version_num"))
    if db.postgres:
        from sqlalchemy import func, literal_column, select

        # a statement of `fetch` runs in a transaction of its own, read-only by the connection's default
        for _ in range(3):
            with pytest.raises((DBAPIError, StoreError), match="read-only"):
                db.fetch(select(func.nextval(literal_column("'audit_checkpoints_id_seq'"))), {})
        assert db.fetch(COUNTING, {"top": 10})[0][0] == 10
        with db.read() as s:  # and the pooled connection's sessions are transactions again, as they were
            assert s.execute(text("SHOW transaction_isolation")).scalar() == "repeatable read"
            assert s.execute(text("SHOW transaction_read_only")).scalar() == "on"


COUNTING = counting_query()


def test_a_read_under_a_budget_stops_when_it_is_spent_and_leaves_the_connection_unbounded(db: Database) -> None:
    """What lets a route run its reads on the event loop: a read that runs long is stopped at the budget (SQLite)."""
    assert db.fetch(COUNTING, {"top": 1000})[0][0] == 1000
    with db.budget(1.0):
        assert db.fetch(COUNTING, {"top": 1000})[0][0] == 1000  # quick: answered within its budget
    start = time.perf_counter()
    if db.postgres:  # its work is never run on the loop: no budget applies
        with db.budget(0.01):
            assert db.fetch(COUNTING, {"top": 300_000})[0][0] == 300_000
        return
    with db.budget(0.01), pytest.raises(OverBudget):
        db.fetch(COUNTING, {"top": 50_000_000})  # seconds of work
    assert time.perf_counter() - start < 0.5
    # the pooled connection keeps no handler: the same read without a budget goes to the end
    assert [db.fetch(COUNTING, {"top": 300_000})[0][0] for _ in range(3)] == [300_000] * 3


def test_only_a_stopped_read_or_a_lock_counts_as_over_budget_and_other_errors_stay_themselves(
    db: Database, tmp_path: Path
) -> None:
    """A read under a budget is started again elsewhere only when the budget stopped it, never for a real error.

    SQLite's wait for a lock never calls the progress handler, so under a budget the wait is the budget (the
    busy timeout is set to it) and a lock still held then counts as over budget too.
    """
    import sqlite3

    from kuzet.store.db import _over_budget

    def failure(conn: sqlite3.Connection, sql: str) -> sqlite3.Error:
        with pytest.raises(sqlite3.Error) as info:
            conn.execute(sql).fetchall()
        return info.value

    holder, reader = (sqlite3.connect(tmp_path / "locks.db", timeout=0, isolation_level=None) for _ in range(2))
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    assert _over_budget(failure(reader, "SELECT * FROM t"))  # SQLITE_BUSY: the lock outlasted the budget
    holder.execute("ROLLBACK")
    reader.set_progress_handler(lambda: True, 1)
    assert _over_budget(failure(reader, "SELECT * FROM t"))  # SQLITE_INTERRUPT: the budget stopped it
    reader.set_progress_handler(None, 0)
    assert not _over_budget(failure(reader, "SELECT no_such_column FROM t"))
    for conn in (holder, reader):
        conn.close()
    broken = select(literal_column("no_such_column"))
    with db.budget(0.05), pytest.raises(Exception) as info:
        db.fetch(broken, {})
    assert not isinstance(info.value, OverBudget)
