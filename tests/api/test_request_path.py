"""What a request costs the server beyond its own work: hand-overs to the thread pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from kuzet.app import Kuzet


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
    # the session check, the route (its query and audit entry), and FastAPI's check of the answer: reading
    # `app.state.services` must not take a hand-over of its own (it was one on every request)
    assert len(handed) == 3, handed
    r = client.get("/api/events", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
