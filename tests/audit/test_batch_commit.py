"""A batch of ledger entries commits all or nothing on both engines; on PostgreSQL its statements are pipelined."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from kuzet.audit import ledger_sql
from kuzet.audit.ledger import AuditLedger, NewEntry
from kuzet.core.errors import StoreError
from kuzet.services.container import Services, build_services
from tests.support.rawdb import RawDb, new_database

pytestmark = pytest.mark.store

# The database itself refuses one action, as a constraint or a full disk would, in the middle of a batch's statements.
REFUSE_SQLITE = [
    "CREATE TRIGGER refuse BEFORE INSERT ON audit_entries WHEN NEW.action = 'test.refused' "
    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
]
REFUSE_POSTGRESQL = [
    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.action = 'test.refused' THEN "
    "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER refuse BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse()",
]

# The server ends the connection in the middle of the batch, as a restart or a network cut would.
TERMINATE = (
    "CREATE FUNCTION cut() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.action = 'test.cut' THEN "
    "PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$"
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return new_database(tmp_path)


@pytest.fixture
def svc(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.setenv("KUZET_DATABASE_URL", url)
    services = build_services(tmp_path / "data")
    yield services
    services.close()


def _entry(action: str, i: int = 0) -> NewEntry:
    return NewEntry(actor="tester", action=action, object=f"thing:{i}", justification="", details={"i": i})


def _counts(url: str) -> tuple[int, int]:
    raw = RawDb(url)
    try:
        entries = raw.execute("SELECT count(*) FROM audit_entries").fetchone()[0]
        checkpoints = raw.execute("SELECT count(*) FROM audit_checkpoints").fetchone()[0]
    finally:
        raw.close()
    return int(entries), int(checkpoints)


def _run_sql(url: str, statements: list[str]) -> None:
    raw = RawDb(url)
    for statement in statements:
        raw.execute(statement)
    raw.commit()
    raw.close()


def _reads_from(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first entry of every read of the chain's hashes the ledger makes from now on."""
    firsts: list[int] = []
    real = AuditLedger._hashes

    def counted(self: AuditLedger, first: int) -> list[Any]:
        firsts.append(first)
        return real(self, first)

    monkeypatch.setattr(AuditLedger, "_hashes", counted)
    return firsts


def _goes_on(svc: Services, url: str, before: tuple[int, int], firsts: list[int]) -> None:
    """Every later batch commits; none reads the chain from its start again (the failed one left the cache as it
    was), and the ledger verifies."""
    firsts.clear()
    for i in range(4):
        svc.uow._commit_entries([_entry("test.fine", 10 + i), _entry("test.fine", 20 + i)])
    assert _counts(url) == (before[0] + 8, before[1] + 4)
    assert 1 not in firsts and len(firsts) == 4, firsts
    report = svc.audit.verify(None)
    assert report.ok, report.problem


def test_a_batch_the_database_refuses_leaves_nothing_and_the_next_batch_goes_on(
    svc: Services, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_sql(url, REFUSE_POSTGRESQL if svc.ctx.db.postgres else REFUSE_SQLITE)
    svc.uow._commit_entries([_entry("test.fine", i) for i in range(40)])  # the process now caches the frontier
    before = _counts(url)
    firsts = _reads_from(monkeypatch)

    # Good entries before and after the refused one, in the one batch: none of them is stored, nor a checkpoint.
    batch = [_entry("test.fine", 1), _entry("test.refused", 2), _entry("test.fine", 3)]
    with pytest.raises(DBAPIError, match="refused by the test"):
        svc.uow._commit_entries(batch)
    assert _counts(url) == before
    _goes_on(svc, url, before, firsts)


def test_a_batch_whose_outside_copy_cannot_be_written_leaves_nothing_and_the_next_goes_on(
    svc: Services, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc.uow._commit_entries([_entry("test.fine", i) for i in range(40)])
    before = _counts(url)
    firsts = _reads_from(monkeypatch)
    real = svc.ctx.checkpoint_log.prepare

    def full(cp: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(svc.ctx.checkpoint_log, "prepare", full)
    with pytest.raises(OSError, match="No space left"):
        svc.uow._commit_entries([_entry("test.fine", 1), _entry("test.fine", 2)])
    assert _counts(url) == before
    monkeypatch.setattr(svc.ctx.checkpoint_log, "prepare", real)
    _goes_on(svc, url, before, firsts)


@pytest.mark.postgres_only
def test_a_connection_dropped_mid_batch_says_so_and_the_next_batch_goes_on(
    svc: Services, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_sql(url, [TERMINATE, "CREATE TRIGGER cut BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION cut()"])
    svc.uow._commit_entries([_entry("test.fine", i) for i in range(40)])
    before = _counts(url)
    firsts = _reads_from(monkeypatch)
    # The server's own account (its FATAL message, or the socket closed before that was read, depending on timing),
    # not the "connection is lost" of a rollback tried on the dead connection, which used to replace it.
    server_said = "cannot be reached: (terminating connection|consuming input failed: server closed the connection)"
    with pytest.raises(StoreError, match=server_said) as caught:
        svc.uow._commit_entries([_entry("test.fine", 1), _entry("test.cut", 2)])
    assert "kuzet retries" in (caught.value.hint or "")
    assert _counts(url) == before
    _goes_on(svc, url, before, firsts)


@pytest.mark.postgres_only
def test_on_postgresql_the_ledgers_batch_goes_through_the_pipeline_and_other_writes_do_not(
    svc: Services, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    piped: list[int] = []
    real = ledger_sql.DriverStatements.insert_entries

    def counted(self: ledger_sql.DriverStatements, driver: Any, rows: list[dict[str, Any]]) -> None:
        piped.append(len(rows))
        real(self, driver, rows)

    monkeypatch.setattr(ledger_sql.DriverStatements, "insert_entries", counted)
    before = _counts(url)
    svc.uow._commit_entries([_entry("test.fine", i) for i in range(5)])
    assert piped == [5]
    svc.uow.record(None, "test.single", object="thing:9")  # one entry, from the command line: the same way
    assert piped == [5, 1]
    with svc.uow.tx() as w:  # any other write transaction: SQLAlchemy's statements, the lock taken at once
        w.ledger.append(actor="tester", action="test.other", object="thing:10")
    assert piped == [5, 1]
    assert _counts(url) == (before[0] + 7, before[1] + 3)  # all three committed, each with its checkpoint
    report = svc.audit.verify(None)
    assert report.ok, report.problem
