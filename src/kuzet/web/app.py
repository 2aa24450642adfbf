"""The whole web application `kuzet serve` runs: the REST API with the dashboard's pages and static files on top."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kuzet.api.app import create_app as create_api
from kuzet.api.deps import close_read_lane
from kuzet.core.errors import ConfigError
from kuzet.services.container import Services
from kuzet.web.chrome import error_page
from kuzet.web.views import router

STATIC = Path(__file__).resolve().parent / "static"
WORKER_DATA_ENV = "KUZET_SERVE_DATA_DIR"
WORKER_CONFIG_ENV = "KUZET_SERVE_CONFIG"
"""What `kuzet serve --workers N` hands its worker processes: the data directory and the config file (absolute)."""
PR_SET_PDEATHSIG = 1
"""prctl(2): the signal a process gets when its parent dies."""


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
    `WORKER_CONFIG_ENV`), already prepared by the command, and closes them when uvicorn stops it, so that its last
    checkpoints reach the witnesses; it ends with the command's process. Sessions, sign-in throttling, the ledger and
    its checkpoints are in the store, whose write lock orders the processes' commits (as it orders `kuzet run`'s
    workers and `kuzet serve`). What stays per process is in docs/web.md.
    """
    from kuzet.config.loading import load_config
    from kuzet.services.container import build_services

    data, config = os.environ.get(WORKER_DATA_ENV, ""), os.environ.get(WORKER_CONFIG_ENV, "")
    if not data:
        raise ConfigError(f"{WORKER_DATA_ENV} is not set", hint="start the server with `kuzet serve --workers N`")
    _end_with_parent()
    services = build_services(Path(data), load_config(Path(config) if config else None), prepare=False)
    app = create_app(services)
    app.router.lifespan_context = closing(app.router.lifespan_context, services.close)
    return app


def _end_with_parent() -> None:
    """Linux: SIGTERM this worker when `kuzet serve` dies, even by SIGKILL (else it would hold the port, unseen)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: uvicorn's own supervision only
        return
    if os.getppid() == 1:  # the parent died before the line above
        raise SystemExit(0)


def closing(
    inner: Callable[[Any], AbstractAsyncContextManager[Any]], close: Callable[[], None]
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """The server's lifespan: `inner`'s, with the start-up heap frozen while it serves, then `close` at shutdown.

    Everything built before the first request (modules, models, the app, the services) is moved out of the garbage
    collector's reach (`gc.freeze`) once it is up: a full collection then walks only what requests made since, not
    the 160,000 or so objects the server began with. Without it, each full collection (about one per
    second under load) stopped a process for 50 to 100 ms, answers and ledger commits included: most of the p99
    (docs/performance.md). Objects frozen are still freed when nothing refers to them; only a reference cycle among
    them waits until shutdown, where the heap is unfrozen again.
    """

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        try:
            async with inner(app) as state:
                gc.collect()  # the start-up's garbage goes first; what is left is the server's own
                gc.freeze()
                yield state
        finally:
            gc.unfreeze()
            close_read_lane()  # reads still running end before the services they use are closed
            close()

    return lifespan
