"""The ledger detects any direct edit, deletion, insertion or swap, and survives a crash mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuzet.audit.checkpoint_log import CheckpointLog
from kuzet.audit.ledger import AuditLedger, NewEntry
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.verify import verify_ledger
from kuzet.services.container import build_services
from kuzet.store.db import Database
from tests.support.postgres import PostgresServer
from tests.support.rawdb import RawDb, copy_database, new_database

N = 12


pytestmark = pytest.mark.store


def _url(folder: Path) -> str:
    return (folder / "url").read_text()


def _ledger(folder: Path, n: int = N, *, checkpoint_every: int = 4) -> tuple[str, LedgerSigner]:
    url = new_database(folder)
    (folder / "url").write_text(url)
    db = Database(url)
    db.migrate()
    signer = LedgerSigner.load_or_create(folder / "keys")
    log = CheckpointLog(folder / "checkpoints.jsonl")
    for i in range(n):
        with db.session() as s:
            ledger = AuditLedger(s)
            ledger.append(actor=f"user{i % 3}", action="watchlist.view", object=f"entry:{i}", details={"i": i})
            cp = ledger.checkpoint(signer) if (i + 1) % checkpoint_every == 0 or i == n - 1 else None
            if cp is not None:
                log.prepare(cp)
        if cp is not None:
            log.committed(cp)
    db.dispose()
    return url, signer


def _verify(folder: Path, signer: LedgerSigner) -> tuple[bool, int, str]:
    db = Database(_url(folder))
    with db.read() as s:
        report = verify_ledger(s, signer, log_file=folder / "checkpoints.jsonl")
    db.dispose()
    return report.ok, report.first_bad, report.problem


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer | None
) -> tuple[Path, LedgerSigner]:
    folder = tmp_path_factory.mktemp("ledger")
    _, signer = _ledger(folder)
    return folder, signer


def _copy(pristine: tuple[Path, LedgerSigner], target: Path) -> Path:
    folder, _ = pristine
    target.mkdir(parents=True, exist_ok=True)
    (target / "url").write_text(copy_database(_url(folder), target))
    (target / "checkpoints.jsonl").write_bytes((folder / "checkpoints.jsonl").read_bytes())
    return target


def test_untouched_ledger_verifies(pristine: tuple[Path, LedgerSigner]) -> None:
    ok, _, problem = _verify(*pristine)
    assert ok, problem


FIELDS = ["ts", "actor", "action", "object", "justification", "details", "source", "prev_hash", "entry_hash"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["edit", "delete", "insert", "swap"]),
    seq=st.integers(1, N),
    other=st.integers(1, N),
    field=st.sampled_from(FIELDS),
)
def test_any_single_tampering_is_detected(
    pristine: tuple[Path, LedgerSigner],
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    seq: int,
    other: int,
    field: str,
) -> None:
    folder = _copy(pristine, tmp_path_factory.mktemp("t"))
    con = RawDb(_url(folder))
    if kind == "edit":
        # The last character changed (the length kept: PostgreSQL enforces the column's size, SQLite does not).
        last = f"substr({field}, length({field}), 1)"
        changed = f"substr({field}, 1, length({field}) - 1) || CASE WHEN {last} = 'x' THEN 'y' ELSE 'x' END"
        new = f"CASE WHEN length({field}) = 0 THEN 'x' ELSE {changed} END"
        con.execute(f"UPDATE audit_entries SET {field} = {new} WHERE seq = ?", (seq,))
    elif kind == "delete":
        con.execute("DELETE FROM audit_entries WHERE seq = ?", (seq,))
    elif kind == "insert":
        # A forged entry placed after `seq`: later entries are renumbered to make room, as a forger must.
        con.execute("UPDATE audit_entries SET seq = seq + 1000 WHERE seq > ?", (seq,))
        con.execute("UPDATE audit_entries SET seq = seq - 999 WHERE seq > 1000")
        row = con.execute("SELECT * FROM audit_entries WHERE seq = ?", (seq,)).fetchone()
        con.execute("INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?,?,?,?)", (seq + 1, *row[1:]))
    else:
        if other == seq:
            other = seq % N + 1
        # Swap the contents of two entries, keeping their numbers.
        a = con.execute("SELECT * FROM audit_entries WHERE seq = ?", (seq,)).fetchone()
        b = con.execute("SELECT * FROM audit_entries WHERE seq = ?", (other,)).fetchone()
        cols = ["ts", "actor", "action", "object", "justification", "details", "source", "prev_hash", "entry_hash"]
        sets = ", ".join(f"{c} = ?" for c in cols)
        con.execute(f"UPDATE audit_entries SET {sets} WHERE seq = ?", (*b[1:], seq))
        con.execute(f"UPDATE audit_entries SET {sets} WHERE seq = ?", (*a[1:], other))
    con.commit()
    con.close()
    ok, first_bad, problem = _verify(folder, pristine[1])
    assert not ok
    assert problem
    assert first_bad >= 1 or "checkpoint" in problem


def test_deleting_the_newest_entry_is_caught_by_the_checkpoint(
    pristine: tuple[Path, LedgerSigner], tmp_path: Path
) -> None:
    folder = _copy(pristine, tmp_path / "c")
    con = RawDb(_url(folder))
    con.execute("DELETE FROM audit_entries WHERE seq = ?", (N,))
    con.commit()
    con.close()
    ok, first_bad, problem = _verify(folder, pristine[1])
    assert not ok and first_bad == N and "removed" in problem


def test_rewritten_ledger_with_recomputed_hashes_is_caught(pristine: tuple[Path, LedgerSigner], tmp_path: Path) -> None:
    """A forger who recomputes every hash still cannot match the signed checkpoints."""
    from kuzet.audit.ledger import GENESIS, _row_hash
    from kuzet.store.models import AuditEntryRow

    folder = _copy(pristine, tmp_path / "r")
    db = Database(_url(folder))
    with db.session() as s:
        rows = list(s.query(AuditEntryRow).order_by(AuditEntryRow.seq))
        rows[2].actor = "someone-else"
        prev = GENESIS
        for r in rows:
            r.prev_hash = prev
            r.entry_hash = _row_hash(r)
            prev = r.entry_hash
    db.dispose()
    ok, _, problem = _verify(folder, pristine[1])
    assert not ok and "checkpoint" in problem


def test_deleted_checkpoint_is_caught_by_the_outside_copy(pristine: tuple[Path, LedgerSigner], tmp_path: Path) -> None:
    folder = _copy(pristine, tmp_path / "k")
    con = RawDb(_url(folder))
    con.execute("DELETE FROM audit_checkpoints WHERE id = (SELECT max(id) FROM audit_checkpoints)")
    con.commit()
    con.close()
    ok, first_bad, problem = _verify(folder, pristine[1])
    # The entries the deleted checkpoint covered are left unsigned, and the outside copy still lists it.
    assert not ok and first_bad == N - 3 and "not covered by a signed checkpoint" in problem


def test_ledger_survives_sigkill_mid_write(tmp_path: Path) -> None:
    """A writer killed at a random moment leaves no gap and no half entry; verify passes after restart."""
    url = new_database(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from kuzet.audit.checkpoint_log import CheckpointLog
        from kuzet.audit.ledger import AuditLedger
        from kuzet.audit.signing import LedgerSigner
        from kuzet.store.db import Database
        folder = Path({str(tmp_path)!r})
        db = Database({url!r})
        db.migrate()
        signer = LedgerSigner.load_or_create(folder / "keys")
        log = CheckpointLog(folder / "checkpoints.jsonl")
        print("ready", flush=True)
        i = 0
        while True:
            with db.session() as s:
                ledger = AuditLedger(s)
                ledger.append(actor="writer", action="test.append", details={{"i": i, "pad": "x" * 2000}})
                cp = ledger.checkpoint(signer)
                log.prepare(cp)
            log.committed(cp)
            i += 1
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    signer = LedgerSigner.load_or_create(tmp_path / "keys")
    db = Database(url)
    with db.read() as s:
        size = AuditLedger(s).size()
        report = verify_ledger(s, signer, log_file=tmp_path / "checkpoints.jsonl")
    assert size > 5
    assert report.ok, report.problem
    # And the ledger keeps growing from where it stopped.
    with db.session() as s:
        entry = AuditLedger(s).append(actor="after", action="test.resume")
    assert entry.seq == size + 1
    db.dispose()


def test_checkpoint_after_a_rolled_back_append_signs_the_true_root(tmp_path: Path) -> None:
    """The cached Merkle frontier must not keep a leaf whose transaction rolled back."""
    from sqlalchemy import event

    from kuzet.audit import merkle

    db = Database(new_database(tmp_path))
    db.migrate()
    signer = LedgerSigner.load_or_create(tmp_path / "keys")
    with db.session() as s:
        AuditLedger(s).append(actor="a", action="x")
        AuditLedger(s).checkpoint(signer)
    with pytest.raises(RuntimeError), db.session() as s:
        AuditLedger(s).append(actor="a", action="will-roll-back")
        AuditLedger(s).checkpoint(signer)
        raise RuntimeError("crash")
    hashes: list[str] = []
    event.listen(
        db.engine, "before_cursor_execute", lambda *a: hashes.append(a[2]) if a[2].startswith("SELECT") else None
    )
    with db.session() as s:
        ledger = AuditLedger(s)
        ledger.append(actor="a", action="kept")
        cp = ledger.checkpoint(signer)
        # the cache never held the rolled-back leaf: one read (from the cached size on, the head with it), where a
        # cache that kept it would be dropped and every entry read again for the root, with the write lock held
        assert sum("entry_hash" in q for q in hashes) == 1, hashes
        assert cp is not None and cp.root_hash == merkle.root(ledger.leaves()).hex()
        assert verify_ledger(s, signer).ok
    db.dispose()


def test_a_checkpoint_after_another_process_wrote_reads_what_it_missed_and_signs_the_true_root(tmp_path: Path) -> None:
    """Two processes take turns at the ledger: each one's cached frontier misses the other's entries.

    The batch that follows its own is five statements (PostgreSQL: the write lock too): the chain's head, the
    entries, the checkpoint, with no read of sizes or leaves. After another process wrote, the read of the head
    brings the missed leaves with it; the root is still the root of every entry, and the ledger verifies.
    """
    from sqlalchemy import event

    from kuzet.audit import merkle

    url = new_database(tmp_path)
    db = Database(url)
    db.migrate()
    signer = LedgerSigner.load_or_create(tmp_path / "keys")
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0].upper()))

    def batch(action: str) -> None:
        with db.session() as s:
            ledger = AuditLedger(s)
            ledger.append_many([NewEntry("a", action, "", "", None, "test")] * 3)
            cp = ledger.checkpoint(signer)
        with db.read() as s:
            assert cp is not None and cp.root_hash == merkle.root(AuditLedger(s).leaves()).hex()

    batch("first")
    statements.clear()
    batch("own")  # after its own batch: nothing to read but the head
    assert statements.count("SELECT") == (2 if db.postgres else 1) and statements.count("INSERT") == 2, statements
    other = textwrap.dedent(
        f"""
        from pathlib import Path
        from kuzet.audit.ledger import AuditLedger
        from kuzet.audit.signing import LedgerSigner
        from kuzet.store.db import Database
        db = Database({url!r})
        signer = LedgerSigner.load_or_create(Path({str(tmp_path / "keys")!r}))
        for i in range(4):
            with db.session() as s:
                AuditLedger(s).append(actor="other", action=f"other-{{i}}")
                AuditLedger(s).checkpoint(signer)
        """
    )
    subprocess.run([sys.executable, "-c", other], check=True, timeout=120)
    statements.clear()
    batch("after the other")
    # the head and the missed leaves in one read, while the write lock is held: no second read for the root
    assert statements.count("SELECT") == (2 if db.postgres else 1), statements
    with db.read() as s:
        assert AuditLedger(s).size() == 13 and verify_ledger(s, signer).ok
    db.dispose()


def test_entries_of_a_rolled_back_savepoint_are_not_signed(tmp_path: Path) -> None:
    """A transaction's checkpoint counts what it appended only while that stands: a savepoint rolled back is not."""
    from kuzet.audit import merkle

    db = Database(new_database(tmp_path))
    db.migrate()
    signer = LedgerSigner.load_or_create(tmp_path / "keys")
    with db.session() as s:  # the process's cached frontier now ends where the next transaction begins
        AuditLedger(s).append(actor="a", action="first")
        AuditLedger(s).checkpoint(signer)
    with db.session() as s:
        ledger = AuditLedger(s)
        ledger.append(actor="a", action="kept")
        nested = s.begin_nested()
        ledger.append(actor="a", action="undone")
        nested.rollback()
        assert ledger.size() == 2  # the savepoint's entry is gone
        cp = ledger.checkpoint(signer)
        assert cp is not None and cp.tree_size == 2 and cp.root_hash == merkle.root(ledger.leaves()).hex()
        assert verify_ledger(s, signer).ok
    db.dispose()


def test_each_ledger_commit_flushes_the_outside_copy_once_and_before_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prepared line must be on disk before its checkpoint is committed; the committed mark after it needs no
    flush of its own (a crash that loses it leaves the checkpoint prepared, which verifies): one flush per batch."""
    svc = build_services(tmp_path / "data")
    path = str(svc.ctx.checkpoint_log.path)
    with svc.uow.read() as r:
        before = len(r.ledger.checkpoints())
    in_database: list[int] = []  # checkpoints the database held at each flush of the copy
    real = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") == path:
            with svc.uow.read() as r:
                in_database.append(len(r.ledger.checkpoints()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for _ in range(3):
        svc.uow.record(None, "test.entry")
    monkeypatch.undo()
    assert in_database == [before, before + 1, before + 2]
    with svc.uow.read() as r:
        assert len(r.ledger.checkpoints()) == before + 3
        assert verify_ledger(r.session, svc.ctx.signer, log_file=svc.ctx.checkpoint_log.path).ok
    svc.close()
