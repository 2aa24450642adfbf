"""Many writers, one ledger: processes appending at the same time keep one chain, take turns, and a database restart
loses nothing.

The writers are separate processes (as kuzet's processes on several machines are), sharing the store and the keys
folder (a shared mount on a cluster; see docs/scale.md). On PostgreSQL the database's own advisory lock serialises
them; on SQLite its write lock does (the turns of `store.turns` only order who asks for it). No process-level lock is
relied on.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import kuzet.store.db as db_module
from kuzet.audit.ledger import AuditLedger
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.verify import verify_ledger
from kuzet.store.db import Database
from tests.support.postgres import PostgresServer
from tests.support.rawdb import counting_query, new_database

pytestmark = pytest.mark.store

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from kuzet.audit.checkpoint_log import CheckpointLog
    from kuzet.audit.ledger import AuditLedger
    from kuzet.audit.signing import LedgerSigner
    from kuzet.core.errors import StoreError
    from kuzet.store.db import Database

    url, folder, name, seconds = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    db = Database(url)
    signer = LedgerSigner.load_or_create(folder / "keys")
    log = CheckpointLog(folder / "checkpoints.jsonl")
    print("ready", flush=True)
    while not (folder / "go").exists():  # nothing more on stdout until the test has read "ready" of everyone
        time.sleep(0.01)
    end, i, unsure = time.monotonic() + seconds, 0, False
    while time.monotonic() < end or unsure:  # an unanswered commit is settled even after the time is up
        try:
            if unsure:  # the last commit's answer was lost with the connection: did it happen?
                with db.read() as s:
                    done = any(e.object == f"{name}:{i}" for e in AuditLedger(s).entries(limit=10**9))
                unsure = False
                if done:
                    print(f"{name}:{i}", flush=True)
                    i += 1
                    continue
                if time.monotonic() >= end:
                    break
            with db.session(pipelined=i % 2 == 0) as s:  # both ways to the database (PostgreSQL), interleaved
                ledger = AuditLedger(s)
                ledger.append(actor=name, action="test.append", object=f"{name}:{i}")
                cp = ledger.checkpoint(signer)
                log.prepare(cp)
            log.committed(cp)
        except StoreError as exc:
            print(f"{name}:{i} {exc.message}", file=sys.stderr, flush=True)
            unsure = True  # the database went away (a restart) mid-transaction or mid-commit
            time.sleep(0.2)
            continue
        print(f"{name}:{i}", flush=True)  # said only once committed
        i += 1
    db.dispose()
    """
)


def _migrated(folder: Path) -> str:
    url = new_database(folder)
    db = Database(url)
    db.migrate()
    db.dispose()
    return url


def _writers(url: str, folder: Path, names: list[str], seconds: float) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(folder), name, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    (folder / "go").touch()  # all at once
    return procs


def _committed(procs: list[subprocess.Popen[str]]) -> list[str]:
    said = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        said += out.split()
    return said


def _stored(url: str) -> list[str]:
    db = Database(url)
    with db.read() as s:
        objects = [e.object for e in AuditLedger(s).entries(limit=10**9)]
    db.dispose()
    return objects


def _verify(url: str, folder: Path) -> tuple[bool, str]:
    db = Database(url)
    with db.read() as s:
        report = verify_ledger(s, LedgerSigner.load_or_create(folder / "keys"), log_file=folder / "checkpoints.jsonl")
    db.dispose()
    return report.ok, report.problem


def test_writers_in_several_processes_keep_one_chain(tmp_path: Path) -> None:
    url = _migrated(tmp_path)
    LedgerSigner.load_or_create(tmp_path / "keys")  # one key, shared, made before the writers start
    procs = _writers(url, tmp_path, ["node-a", "node-b", "node-c"], seconds=8)
    said = _committed(procs)
    stored = _stored(url)
    assert len(said) > 30 and {s.split(":")[0] for s in said} == {"node-a", "node-b", "node-c"}
    assert sorted(stored) == sorted(said)  # every committed append exactly once, nothing else
    # and they took turns: on SQLite, without `store.turns`, one process got 3-6 times another's commits
    shares = Counter(s.split(":")[0] for s in said).values()
    assert min(shares) >= max(shares) / 2, shares
    ok, problem = _verify(url, tmp_path)
    assert ok, problem


@pytest.mark.postgres_only
def test_a_postgresql_restart_under_load_loses_nothing_and_doubles_nothing(
    tmp_path: Path, postgres_server: PostgresServer | None
) -> None:
    assert postgres_server is not None
    url = _migrated(tmp_path)
    LedgerSigner.load_or_create(tmp_path / "keys")
    postgres_server.checkpoint()  # the crash's recovery replays this test's writes, not every earlier test's
    procs = _writers(url, tmp_path, ["node-a", "node-b"], seconds=14)
    time.sleep(3)
    postgres_server.stop("immediate")  # a crash: no shutdown checkpoint, recovery from the WAL at the next start
    time.sleep(2)
    postgres_server.start()
    said = _committed(procs)
    stored = _stored(url)
    before = [s for s in said if s.startswith("node-a")]
    assert len(before) > 10
    assert sorted(stored) == sorted(said)  # what was answered as committed survived the crash, once each
    ok, problem = _verify(url, tmp_path)
    assert ok, problem


@pytest.mark.postgres_only
def test_reads_need_no_check_per_use_and_still_survive_a_postgresql_restart(
    tmp_path: Path, postgres_server: PostgresServer | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read pool checks a connection (a round trip) only after a quiet second: a read that meets a connection
    the restart dropped runs once more on a new one, and a connection idle across the restart is checked first."""
    assert postgres_server is not None
    url, query = _migrated(tmp_path), counting_query()
    busy, idle = Database(url), Database(url)
    pings: list[int] = []
    for db in (busy, idle):
        real = db.read_engine.dialect.do_ping
        monkeypatch.setattr(db.read_engine.dialect, "do_ping", lambda c, real=real: pings.append(1) or real(c))
        with ThreadPoolExecutor(4) as threads:  # several pooled connections, each used again at once
            assert list(threads.map(lambda _, db=db: db.fetch(query, {"top": 5})[0][0], range(40))) == [5] * 40
        assert db.read_engine.pool.checkedin() >= 2
    assert pings == []  # none while connections are in use: the round trip every read used to make
    pools = (busy.read_engine.pool, idle.read_engine.pool)
    postgres_server.checkpoint()
    postgres_server.stop("immediate")
    postgres_server.start()
    monkeypatch.setattr(db_module, "IDLE_PING_S", 3600.0)  # as under load: no connection counts as idle
    assert busy.fetch(query, {"top": 7})[0][0] == 7  # dropped connection found, pool emptied, read again
    assert busy.read_engine.pool is not pools[0] and pings == []
    with busy.read() as s:
        assert s.execute(query, {"top": 3}).scalar() == 3
    monkeypatch.setattr(db_module, "IDLE_PING_S", 0.0)
    assert idle.fetch(query, {"top": 9})[0][0] == 9
    assert idle.read_engine.pool is pools[1] and pings  # checked before use: replaced without a failed read
    with idle.read() as s:
        assert s.execute(query, {"top": 4}).scalar() == 4
    busy.dispose()
    idle.dispose()
