"""Group commit of ledger entries: many requests, one transaction and one checkpoint, nobody answered early.

The unit tests drive `GroupCommit` with a commit function of their own (to see the batches and to make a commit
fail); the others use the real store on both engines, in threads and through a real `kuzet serve` killed mid-load.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kuzet.audit.ledger import Checkpoint, NewEntry
from kuzet.config.models import KuzetConfig
from kuzet.core.errors import StoreError
from kuzet.services.container import build_services
from kuzet.services.group_commit import Deferred, GroupCommit
from tests.conftest import PASSWORD
from tests.support.rawdb import raw_db
from tests.support.serve import KuzetServe


def _entry(i: int) -> NewEntry:
    return NewEntry("someone", "test.entry", object=f"item:{i}")


@pytest.mark.parametrize("max_batch", [2000, 3])  # 3: a leader's own entry may lie beyond the batch it takes
def test_concurrent_entries_share_commits_and_each_returns_after_its_own(max_batch: int) -> None:
    committed: set[str] = set()
    batches: list[int] = []
    lock = threading.Lock()

    def commit(entries: list[NewEntry]) -> None:
        time.sleep(0.05)  # a commit that takes a while: the others queue meanwhile
        with lock:
            batches.append(len(entries))
            committed.update(e.object for e in entries)

    group = GroupCommit(commit, max_batch=max_batch)
    early: list[str] = []

    def submit(i: int) -> None:
        group.submit(_entry(i))
        with lock:
            if f"item:{i}" not in committed:
                early.append(f"item:{i}")

    with ThreadPoolExecutor(24) as pool:
        list(pool.map(submit, range(48)))
    assert early == []  # nobody returned before the commit that holds their entry
    assert sum(batches) == 48 and len(committed) == 48  # every entry once
    assert max(batches) <= max_batch
    assert len(batches) < 48 // 2 or max_batch < 24  # and they shared transactions


def test_a_failed_commit_fails_every_caller_of_its_batch_and_the_next_batch_goes_on() -> None:
    started = threading.Event()

    def commit(entries: list[NewEntry]) -> None:  # the batch that holds entry 0 fails, whenever it runs
        started.set()
        time.sleep(0.1)
        if any(e.object == _entry(0).object for e in entries):
            raise StoreError("the database is busy", hint="retry in a moment")

    group = GroupCommit(commit)
    outcomes: dict[int, str] = {}

    def submit(i: int) -> None:
        try:
            group.submit(_entry(i))
            outcomes[i] = "ok"
        except StoreError as exc:
            outcomes[i] = exc.message

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(submit, 0)
        started.wait(5)
        rest = [pool.submit(submit, i) for i in range(1, 8)]  # queued behind the failing commit
        first.result()
        for f in rest:
            f.result()
    assert outcomes[0] == "the database is busy"
    assert all(outcomes[i] == "ok" for i in range(1, 8))


def test_a_single_caller_commits_at_once() -> None:
    batches: list[int] = []
    group = GroupCommit(lambda entries: batches.append(len(entries)))
    for i in range(3):
        group.submit(_entry(i))
    assert batches == [1, 1, 1]


def test_queued_entries_are_settled_only_once_committed_and_close_commits_what_waits() -> None:
    committed: list[str] = []
    gate = threading.Event()

    def commit(entries: list[NewEntry]) -> None:
        gate.wait(5)  # the first commit holds until the test has looked
        committed.extend(e.object for e in entries)

    group = GroupCommit(commit)
    futures = [group.enqueue(_entry(i)) for i in range(5)]
    time.sleep(0.05)
    assert not any(f.done() for f in futures)  # nothing settled before its commit
    gate.set()
    for f in futures:
        f.result(timeout=5)
    assert sorted(committed) == sorted(f"item:{i}" for i in range(5))
    late = group.enqueue(_entry(5))
    group.close()  # commits what is queued, then stops the committer
    assert late.done() and "item:5" in committed
    with pytest.raises(StoreError, match="closed"):
        group.enqueue(_entry(6))


def test_a_failed_commit_fails_every_queued_entry_of_its_batch_and_the_committer_goes_on() -> None:
    fail = threading.Event()
    fail.set()

    def commit(entries: list[NewEntry]) -> None:
        if fail.is_set():
            raise RuntimeError("disk full")

    group = GroupCommit(commit)
    first = group.enqueue(_entry(0))
    with pytest.raises(StoreError, match="the audit entry could not be written: disk full"):
        first.result(timeout=5)
    fail.clear()
    group.enqueue(_entry(1)).result(timeout=5)  # the committer thread survived the failure
    group.submit(_entry(2))  # and a waiting caller still leads its own commit
    group.close()


def test_a_request_that_stops_waiting_still_has_its_entry_written_and_the_committer_goes_on() -> None:
    """A client that goes away (a browser's player aborting a range request) cancels its request's wait; asyncio
    passes the cancellation on to the entry's future. The committer thread then found the future cancelled, died
    settling it, and every later request waited for ever."""
    committed: list[str] = []
    gate = threading.Event()

    def commit(entries: list[NewEntry]) -> None:
        gate.wait(5)
        committed.extend(e.object for e in entries)

    group = GroupCommit(commit)

    async def request_that_goes_away() -> None:
        deferred = Deferred(futures=[group.enqueue(_entry(0))])
        waiting = asyncio.ensure_future(deferred.settled())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(request_that_goes_away())
    gate.set()
    group.enqueue(_entry(1)).result(timeout=5)  # the committer is alive
    assert committed == ["item:0", "item:1"]  # and the abandoned request's entry was written all the same
    group.close()


@pytest.mark.store
def test_threads_reading_events_leave_one_verified_chain_with_fewer_checkpoints(tmp_path: Path) -> None:
    svc = build_services(tmp_path / "data")
    try:
        admin = svc.users.init_admin("admin", PASSWORD)
        operator = svc.users.add(admin, "operator", PASSWORD, ["operator"])
        with svc.uow.read() as r:
            before_entries, before_cps = r.ledger.size(), len(r.ledger.checkpoints())

        def view(i: int) -> None:
            svc.records.events(operator, camera=f"probe-{i}", limit=5)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(view, range(160)))
        with svc.uow.read() as r:
            entries = r.ledger.entries(start=before_entries + 1, limit=1000)
            cps = len(r.ledger.checkpoints()) - before_cps
        cameras = sorted(str(e.details["camera"]) for e in entries if e.action == "events.view")
        assert cameras == sorted(f"probe-{i}" for i in range(160))
        assert 0 < cps < 160  # grouped: fewer checkpoints than entries
        assert svc.audit.verify(admin).ok
    finally:
        svc.close()


@pytest.mark.store
@pytest.mark.parametrize("workers", [1, 2])
def test_no_request_is_answered_before_its_audit_entry_is_committed(tmp_path: Path, workers: int) -> None:
    """Load on a real `kuzet serve` (one process, or two on one port), killed (SIGKILL) mid-load: every answered
    request has its entry, and the ledger both processes appended to is one chain."""
    data = tmp_path / "data"
    svc = build_services(data)
    admin = svc.users.init_admin("admin", PASSWORD)
    svc.users.add(admin, "operator", PASSWORD, ["operator"])
    token = svc.users.login("operator", PASSWORD)[1]
    svc.close()
    answered: list[str] = []
    lock = threading.Lock()
    with KuzetServe(data, tmp_path / "serve.log", args=("--workers", str(workers))) as server:
        pids = server.workers() or [server.pid]
        assert len(pids) == workers
        started = {pid: server.cpu_ticks(pid) for pid in pids}
        stop = time.monotonic() + 60
        headers = {"Authorization": f"Bearer {token}"}

        def client(n: int) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
                for i in range(10_000):
                    if time.monotonic() > stop:
                        return
                    name = f"probe-{n}-{i}"
                    try:
                        r = http.get("/api/events", params={"camera": name, "limit": 5})
                    except httpx.HTTPError:
                        return  # the server is gone
                    if r.status_code == 200:
                        with lock:
                            answered.append(name)

        with ThreadPoolExecutor(16) as pool:
            clients = [pool.submit(client, n) for n in range(16)]
            while len(answered) < 150 and time.monotonic() < stop:
                time.sleep(0.01)
            busy = [pid for pid in pids if server.cpu_ticks(pid) > started[pid]]
            server.kill()  # mid-load: requests are in flight
            for c in clients:
                c.result()
    assert len(answered) >= 150
    assert busy == pids  # with two processes, both answered (16 connections, spread by the kernel)
    con = raw_db(data, read_only=True)
    rows = con.execute("SELECT details FROM audit_entries WHERE action = 'events.view'").fetchall()
    con.close()
    recorded = {json.loads(d)["camera"] for (d,) in rows}
    missing = [name for name in answered if name not in recorded]
    assert missing == []
    svc = build_services(data)
    try:
        report = svc.audit.verify(None)
        assert report.ok, report.problem
    finally:
        svc.close()


@pytest.mark.store
def test_recording_inside_an_open_transaction_fails_at_once_instead_of_waiting_for_itself(tmp_path: Path) -> None:
    svc = build_services(tmp_path / "data")
    try:
        with pytest.raises(RuntimeError, match="inside an open transaction"), svc.uow.tx():
            svc.uow.record(None, "test.entry")
        svc.uow.record(None, "test.entry")  # and the unit of work is usable afterwards
        with svc.uow.read() as r:
            assert r.ledger.last("test.entry") is not None
    finally:
        svc.close()


@pytest.mark.store
def test_witnesses_get_one_process_checkpoints_in_commit_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread held up between its commit and handing the checkpoint on (descheduled, say) does not let a later
    commit of the same process reach the witnesses first: a retained MQTT checkpoint would go back in time."""
    witness = tmp_path / "elsewhere" / "witness.jsonl"
    config = KuzetConfig.model_validate({"audit": {"witnesses": [{"type": "file", "path": str(witness)}]}})
    svc = build_services(tmp_path / "data", config)
    try:
        publisher = svc.ctx.witnesses
        publish, held = publisher.publish, threading.Event()

        def slow_first(cp: Checkpoint) -> None:
            if not held.is_set():
                held.set()  # committed; the next transaction may start now
                time.sleep(0.5)
            publish(cp)

        monkeypatch.setattr(publisher, "publish", slow_first)

        def act(action: str) -> None:  # an action's own transaction (no group commit orders these)
            with svc.uow.tx() as w:
                w.audit(None, action)

        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(act, "test.first")
            assert held.wait(10)
            second = pool.submit(act, "test.second")
            first.result(), second.result()
        publisher.flush()
        sizes = [json.loads(line)["tree_size"] for line in witness.read_text().splitlines()]
        assert len(sizes) >= 2 and sizes == sorted(sizes)
    finally:
        svc.close()
