"""What a request costs the server beyond its own work: hand-overs to the thread pool."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

import kuzet.store.db as db_module
from kuzet.api import deps
from kuzet.app import Kuzet
from kuzet.audit.ledger import NewEntry
from kuzet.core.errors import StoreError
from kuzet.services.container import build_services
from kuzet.web.app import closing
from kuzet.web.app import create_app as create_web_app
from tests.conftest import enrol
from tests.support.rawdb import counting_query


def count_handovers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the name of each function handed to a thread (the thread pool or the read lane), in order."""
    handed: list[str] = []
    pool, lane = anyio.to_thread.run_sync, deps.in_read_lane

    async def to_pool(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        handed.append(getattr(func, "__qualname__", type(func).__name__))
        return await pool(func, *args, **kwargs)

    async def to_lane(svc: Any, work: Callable[[], Any]) -> Any:
        handed.append(work.__qualname__)
        return await lane(svc, work)

    monkeypatch.setattr(anyio.to_thread, "run_sync", to_pool)
    monkeypatch.setattr(deps, "in_read_lane", to_lane)
    return handed


@pytest.mark.store
def test_an_audited_read_goes_to_the_thread_pool_only_for_its_database_work(
    api: tuple[Kuzet, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, client, tokens = api
    handed = count_handovers(monkeypatch)
    r = client.get("/api/events", headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert r.status_code == 200
    # Reading `app.state.services` must not take a hand-over of its own (it was one on every request), nor, on
    # SQLite, must the session check or the listing (lookups by an index in a local file: the event loop runs them
    # within a budget; the audit entry is committed by the ledger's own thread). On PostgreSQL each is a round trip
    # over the network: the session check and the route's work go to the read lane, once each.
    expected = ["current_user_dependency.<locals>.<lambda>", "list_events.<locals>.answer"]
    assert handed == (expected if svc.services.ctx.db.postgres else []), handed
    r = client.get("/api/events", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401


def test_no_answer_goes_out_when_its_audit_entry_could_not_be_committed(
    api: tuple[Kuzet, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch, faces_dir: Path
) -> None:
    """An insider who breaks the ledger (a full disk, an unwritable checkpoint copy) gets no unaudited reads: the
    route's answer, already built, is replaced by a 503 and its rows never reach the client."""
    svc, client, tokens = api
    uow = svc.services.uow
    op = svc.authenticate(tokens["operator"])
    examples = faces_dir / "face_recognition_examples"
    enrol(svc, op, "Barack Obama", [examples / "knn_train_obama_obama.jpg"])
    svc.analyze(op, str(examples / "knn_test_obama1.jpg"), camera="door")

    def broken(entries: list[NewEntry]) -> None:
        raise StoreError("the disk is full", hint="free some space")

    with monkeypatch.context() as patched:
        patched.setattr(uow._group, "_commit", broken)
        r = client.get("/api/events", headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert r.status_code == 503
    assert r.json()["error"] == {"type": "StoreError", "message": "the disk is full", "hint": "free some space"}
    assert "door" not in r.text and r.headers["x-content-type-options"] == "nosniff"
    with uow.read() as w:
        assert w.ledger.last("events.view") is None
    r = client.get("/api/events", headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert r.status_code == 200 and r.json()["items"][0]["camera"] == "door"
    with uow.read() as w:
        assert w.ledger.last("events.view") is not None


def test_an_answer_waits_for_the_commit_of_its_audit_entry(
    api: tuple[Kuzet, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, client, tokens = api
    uow = svc.services.uow
    real = uow._commit_entries
    committed_at: list[float] = []

    def slow(entries: list[NewEntry]) -> None:
        time.sleep(0.3)
        real(entries)
        committed_at.append(time.monotonic())

    monkeypatch.setattr(uow._group, "_commit", slow)
    r = client.get("/api/events", headers={"Authorization": f"Bearer {tokens['operator']}"})
    answered = time.monotonic()
    assert r.status_code == 200 and committed_at and committed_at[0] <= answered


@pytest.mark.store
def test_requests_reads_run_a_few_threads_at_a_time(api: tuple[Kuzet, TestClient, dict[str, str]]) -> None:
    """`in_read_lane` (every request's reads on PostgreSQL): never more than `api.read_threads` at once, so the ledger's
    committer thread is not starved of the interpreter while it holds the write lock; the others wait their turn
    and every one is answered, with its own rows."""
    services = api[0].services
    lane = services.ctx.config.api.read_threads
    running, most = 0, 0
    filled = threading.Condition()

    def read(top: int) -> int:
        nonlocal running, most
        with filled:
            running += 1
            most = max(most, running)
            filled.notify_all()
            # the first reads hold their threads until every lane is taken (a lane too narrow: 5 s, then fails below)
            filled.wait_for(lambda: most >= lane, timeout=5)
        try:
            (row,) = services.ctx.db.fetch(counting_query(), {"top": top})
            return int(row[0])
        finally:
            with filled:
                running -= 1

    async def many() -> list[int]:
        return await asyncio.gather(*(deps.in_read_lane(services, lambda i=i: read(i)) for i in range(1, 4 * lane + 1)))

    assert lane == 4  # the default
    assert asyncio.run(many()) == list(range(1, 4 * lane + 1))
    assert most == lane
    running, most = 0, 0
    assert asyncio.run(many()) == list(range(1, 4 * lane + 1))  # a new event loop (a new test client) has its own
    assert most == lane


def test_the_read_lane_carries_the_requests_context_and_ends_its_reads_before_the_server_closes(
    api: tuple[Kuzet, TestClient, dict[str, str]],
) -> None:
    """The request's context goes with its work (the audit entries it queues are its own to wait for). A request
    that went away drops its work while it still waits for a thread; work already running is waited for at
    shutdown, not cut off by the services closing under it."""
    from kuzet.services.group_commit import DEFERRED, Deferred

    services = api[0].services
    threads = services.ctx.config.api.read_threads
    release, busy = threading.Event(), threading.Semaphore(0)
    finished: list[str] = []

    def hold(name: str) -> str:
        busy.release()
        release.wait(5)
        time.sleep(0.1)
        finished.append(name)
        return name

    def lane(name: str) -> asyncio.Future[str]:
        return asyncio.ensure_future(deps.in_read_lane(services, lambda: hold(name)))

    async def serve_then_shut_down() -> tuple[Deferred | None, Deferred, list[str]]:
        mine = Deferred()
        DEFERRED.set(mine)
        seen = await deps.in_read_lane(services, DEFERRED.get)
        holders = [lane(f"holder {i}") for i in range(threads)]
        for _ in holders:  # every thread of the lane taken
            assert await asyncio.to_thread(busy.acquire, True, 5)
        waiting = lane("gone while waiting")
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.sleep(0.05)
        release.set()
        answered = list(await asyncio.gather(*holders))
        await asyncio.sleep(0.3)  # time enough for the dropped work to run, were it still queued
        release.clear()
        running = lane("running at shutdown")
        assert await asyncio.to_thread(busy.acquire, True, 5)
        running.cancel()  # its client went away too, but the work has begun
        release.set()
        deps.close_read_lane()
        return seen, mine, answered

    seen, mine, answered = asyncio.run(serve_then_shut_down())
    assert seen is mine
    assert answered == [f"holder {i}" for i in range(threads)]
    assert "gone while waiting" not in finished
    assert finished[-1] == "running at shutdown"  # close_read_lane returned only after it ended


def test_a_listing_that_runs_past_its_budget_on_the_event_loop_is_answered_from_the_thread_pool_audited_once(
    api: tuple[Kuzet, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch, faces_dir: Path
) -> None:
    """The listing starts again in the thread pool: the same rows, one audit entry per answer, not two."""
    svc, client, tokens = api
    op = svc.authenticate(tokens["operator"])
    examples = faces_dir / "face_recognition_examples"
    enrol(svc, op, "Barack Obama", [examples / "knn_train_obama_obama.jpg"])
    svc.analyze(op, str(examples / "knn_test_obama1.jpg"), camera="door")
    bearer = {"Authorization": f"Bearer {tokens['operator']}"}
    quick = client.get("/api/events", headers=bearer).json()["items"]
    with svc.services.uow.read() as r:
        views = len(r.ledger.entries(limit=10**6, action="events.view"))
    handed = count_handovers(monkeypatch)
    monkeypatch.setattr(deps, "LOOP_BUDGET_S", 0.0)  # every read is past its budget at SQLite's first look
    monkeypatch.setattr(db_module, "PROGRESS_STEPS", 1)
    slow = client.get("/api/events", headers=bearer)
    assert slow.status_code == 200 and slow.json()["items"] == quick and quick[0]["camera"] == "door"
    assert len(handed) == 1, handed  # the route's work, once, in the thread pool
    with svc.services.uow.read() as r:
        assert len(r.ledger.entries(limit=10**6, action="events.view")) == views + 1


def test_work_past_its_budget_leaves_the_event_loop_free(api: tuple[Kuzet, TestClient, dict[str, str]]) -> None:
    """A read of a second or more, asked for on the event loop, holds it for the budget only."""
    services = api[0].services
    counting = counting_query()

    async def measured() -> tuple[int, float, float]:
        gaps: list[float] = []

        async def tick() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.01)
                gaps.append(time.perf_counter() - last)
                last = time.perf_counter()

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        (row,) = await deps.on_loop(services, lambda: services.ctx.db.fetch(counting, {"top": 3_000_000}))
        took = time.perf_counter() - start
        ticker.cancel()
        return row[0], took, max(gaps)

    count, took, widest = asyncio.run(measured())
    assert count == 3_000_000 and took > 0.3  # a long read ...
    assert widest < 0.2, (took, widest)  # ... while the loop went on ticking every 10 ms


def test_a_json_page_is_valid_json_whatever_the_floats() -> None:
    """As FastAPI encodes a route's answer: NaN and infinities (a float column may hold them) become null."""
    import json

    from kuzet.api.routers.pages import json_page

    answer = json_page([{"score": float("nan"), "end": float("inf"), "name": "Ә ✓", "at": None}], 1, 0)
    assert answer.media_type == "application/json"
    assert json.loads(answer.body) == {
        "items": [{"score": None, "end": None, "name": "Ә ✓", "at": None}],
        "limit": 1,
        "offset": 0,
        "next_offset": 1,
    }


def test_work_that_queued_an_audit_entry_before_a_read_over_its_budget_is_not_run_twice(
    api: tuple[Kuzet, TestClient, dict[str, str]],
) -> None:
    """Starting such work again would record its entry twice: `on_loop` refuses instead."""
    from kuzet.services.group_commit import DEFERRED, Deferred

    svc, _, tokens = api
    services, operator = svc.services, svc.authenticate(tokens["operator"])
    runs: list[int] = []

    def writes_then_reads() -> list[Any]:
        runs.append(1)
        services.uow.record(operator, "events.view")
        return services.ctx.db.fetch(counting_query(), {"top": 3_000_000})

    deferred = Deferred()
    token = DEFERRED.set(deferred)
    try:
        with pytest.raises(RuntimeError, match="cannot start again"):
            asyncio.run(deps.on_loop(services, writes_then_reads))
    finally:
        DEFERRED.reset(token)
    deferred.wait()
    assert runs == [1] and len(deferred.futures) == 1


class _Cycle:
    me: object = None


def _lane_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("kuzet-read")}


def test_the_server_freezes_its_start_up_heap_while_it_serves_after_collecting_the_start_up_garbage(
    tmp_path: Path,
) -> None:
    """A full collection walking every object the server began with stopped each process for 50 to 100 ms, about
    once a second under load: most of the p99 of docs/performance.md. Frozen, those objects are not walked."""
    services = build_services(tmp_path / "data")
    app = create_web_app(services)
    closed: list[bool] = []
    app.router.lifespan_context = closing(app.router.lifespan_context, lambda: closed.append(True))
    before = _lane_threads()  # other tests' event loops may still have theirs
    gc.disable()  # nothing but the lifespan's own collection may take the cycle below
    try:
        garbage = _Cycle()
        garbage.me = garbage
        gone = weakref.ref(garbage)
        del garbage
        with TestClient(app) as client:
            assert gone() is None  # collected before the freeze, not kept for the server's life
            assert gc.get_freeze_count() > 50_000  # the modules, the app and the services
            assert client.get("/api/health").status_code == 200
            assert client.portal is not None
            assert client.portal.call(deps.in_read_lane, services, lambda: 7) == 7  # a read lane, as on PostgreSQL
            assert _lane_threads() > before
    finally:
        gc.enable()
        services.close()
    assert gc.get_freeze_count() == 0 and closed == [True]  # unfrozen at shutdown, then closed
    assert _lane_threads() <= before  # the lane's threads ended before the services closed
