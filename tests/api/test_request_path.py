"""What a request costs the server beyond its own work: hand-overs to the thread pool."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from kuzet.app import Kuzet
from kuzet.audit.ledger import NewEntry
from kuzet.core.errors import StoreError
from tests.conftest import enrol


def test_an_audited_read_goes_to_the_thread_pool_only_for_its_database_work(
    api: tuple[Kuzet, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client, tokens = api
    handed: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        handed.append(getattr(func, "__qualname__", type(func).__name__))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    r = client.get("/api/events", headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert r.status_code == 200
    # the route (its query; its audit entry is committed by the ledger's own thread) and FastAPI's check of the
    # answer. Reading `app.state.services` must not take a hand-over of its own (it was one on every request), nor
    # must the session check on SQLite (a lookup by a unique index in a local file: the event loop runs it)
    assert len(handed) == 2, handed
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
