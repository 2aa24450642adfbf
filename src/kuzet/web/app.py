"""The whole web application `kuzet serve` runs: the REST API with the dashboard's pages and static files on top."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kuzet.api.app import create_app as create_api
from kuzet.services.container import Services
from kuzet.web.chrome import error_page
from kuzet.web.views import router

STATIC = Path(__file__).resolve().parent / "static"
WORKER_DATA_ENV = "KUZET_SERVE_DATA_DIR"
WORKER_CONFIG_ENV = "KUZET_SERVE_CONFIG"
"""What `kuzet serve --workers N` hands its worker processes: the data directory and the config file (absolute)."""


def create_app(services: Services, *, secure_cookies: bool | None = None) -> FastAPI:
    """The API (`kuzet.api.app.create_app`) and the dashboard over one `Services`."""
    app = create_api(services, secure_cookies=secure_cookies)
    app.state.error_page = error_page  # errors on the dashboard's pages are pages, with the menu
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def from_environment() -> FastAPI:
    """The app of one worker process of `kuzet serve --workers N` (uvicorn calls it in each process it starts).

    Each process opens its own `Services` over the data directory and config the command named (`WORKER_DATA_ENV`,
    `WORKER_CONFIG_ENV`), and closes them when uvicorn stops it, so its last checkpoints reach the witnesses. Nothing
    is shared in memory: sessions, sign-in throttling, the ledger and its checkpoints are in the store, whose write
    lock orders the processes' commits (as it orders `kuzet run`'s workers and `kuzet serve`).
    """
    from kuzet.config.loading import load_config
    from kuzet.services.container import build_services

    config = os.environ.get(WORKER_CONFIG_ENV, "")
    services = build_services(Path(os.environ[WORKER_DATA_ENV]), load_config(Path(config) if config else None))
    app = create_app(services)
    app.router.lifespan_context = _closing(app.router.lifespan_context, services.close)
    return app


def _closing(
    inner: Callable[[Any], AbstractAsyncContextManager[Any]], close: Callable[[], None]
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """A lifespan that runs `inner`'s, then `close` at shutdown."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        try:
            async with inner(app) as state:
                yield state
        finally:
            close()

    return lifespan
