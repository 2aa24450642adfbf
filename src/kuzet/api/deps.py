"""What every route depends on: the services, the signed-in user, path parameters, uploads and sign-in itself."""

from __future__ import annotations

import asyncio
import contextvars
import tempfile
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Response, UploadFile
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from kuzet.api.security import CSRF_COOKIE, SESSION_COOKIE, authenticate, client_address, new_csrf
from kuzet.core.errors import InputError, KuzetError
from kuzet.core.i18n import Phrase
from kuzet.core.types import User
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.services.container import Services
from kuzet.services.group_commit import DEFERRED
from kuzet.store.db import OverBudget

MAX_UPLOAD = 20 * 1024 * 1024
SESSION_S = 12 * 3600
LOOP_BUDGET_S = 0.005
"""How long a route's reads may hold the event loop (`on_loop`) before its work moves to the thread pool."""
T = TypeVar("T")
_LANES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ThreadPoolExecutor] = weakref.WeakKeyDictionary()
"""Each event loop's read lane (`in_read_lane`): one per server process; a test's client has its own loop."""


def services(request: Request) -> Services:
    """The application's services."""
    found: Services = request.app.state.services
    return found


async def services_dependency(request: Request) -> Services:
    """`services` for `Depends`: a coroutine, resolved on the event loop.

    FastAPI runs a plain function dependency in its thread pool: a hand-over to a worker thread and back, on every
    request, to read one attribute.
    """
    return services(request)


def current_user(request: Request) -> User:
    """The signed-in user (bearer token, or session cookie with CSRF on unsafe methods).

    A plain function, so it runs in the thread pool: checking the session queries the database, which must not
    block the event loop.
    """
    return authenticate(request, services(request).users.authenticate)


async def current_user_dependency(request: Request) -> User:
    """`current_user` for `Depends`: on the event loop on SQLite, in a thread of `in_read_lane` on PostgreSQL.

    The session check is one lookup by a unique index. On SQLite (a local file: tens of microseconds) a hand-over
    to the thread pool costs more than the query: the worker thread waits for the interpreter lock again after
    every SQLite call, behind the event loop and the other workers. On PostgreSQL the query is a round trip over the
    network, which must not stall the event loop.
    """
    svc = services(request)
    if svc.ctx.db.postgres:
        return await in_read_lane(svc, lambda: current_user(request))
    return current_user(request)


async def in_read_lane(svc: Services, work: Callable[[], T]) -> T:
    """`work()` in one of the `api.read_threads` threads this event loop keeps for requests' short reads.

    Not the thread pool's 40: on PostgreSQL, where every request's reads go to a thread, 40 threads runnable at once
    share one interpreter lock with the ledger's committer thread, which then waits for it between the statements
    of a batch while holding the database's write lock, and every process's commits queue behind it. A few threads
    keep the round trips overlapped; requests beyond them wait their turn in the lane's queue, at no cost. 100
    clients, 2 workers, this machine: 335 audited requests/s with 40 threads, 790 with 4-6 (docs/performance.md).

    The lane is a plain `ThreadPoolExecutor` (the request's context variables go with the work), not anyio's
    `to_thread` with a limiter: that hand-over took a fifth of a worker's interpreter time at 1,400 requests/s (a
    cancel scope, the run variables, a `queue.Queue` whose condition wakes the thread); this one a twentieth. A
    request cancelled while its work waits in the queue drops the work; work already running ends on its own, and
    `close_read_lane` waits for it before the services close.
    """
    loop = asyncio.get_running_loop()
    lane = _LANES.get(loop)
    if lane is None:
        size = svc.ctx.config.api.read_threads
        lane = _LANES[loop] = ThreadPoolExecutor(size, thread_name_prefix="kuzet-read")
    return await loop.run_in_executor(lane, contextvars.copy_context().run, work)


def close_read_lane() -> None:
    """Wait for the reads this event loop's lane is running, then end its threads (the server's shutdown)."""
    lane = _LANES.pop(asyncio.get_running_loop(), None)
    if lane is not None:
        lane.shutdown(wait=True, cancel_futures=True)


async def on_loop(svc: Services, work: Callable[[], T]) -> T:
    """`work()` on the event loop while its SQLite reads stay within `LOOP_BUDGET_S`, else in the thread pool.

    A route's work (a listing every client polls) is mostly a query by an index: on SQLite tens of microseconds,
    where a hand-over to the thread pool and back costs more (the worker thread waits for the interpreter lock
    behind the event loop and every other worker; the events route answered about half again as many requests per
    second, bench/load_events.py). A read that runs long (a deep page, a wide filter, a lock held elsewhere) is
    stopped at the budget and the work starts again in the thread pool, so the loop is held about that long at most
    (taking a pooled connection aside). `work` must read before it writes anything: ledger entries it queues after
    its reads are fine, and one queued before a read that ran over is refused here rather than recorded twice. On
    PostgreSQL every query is a round trip, so the work goes to a thread at once (`in_read_lane`).
    """
    if svc.ctx.db.postgres:
        return await in_read_lane(svc, work)
    deferred = DEFERRED.get()
    queued = len(deferred.futures) if deferred is not None else 0
    try:
        with svc.ctx.db.budget(LOOP_BUDGET_S):
            return work()
    except OverBudget:
        if deferred is not None and len(deferred.futures) != queued:
            raise RuntimeError(
                "work given to on_loop recorded a ledger entry before a read: it cannot start again"
            ) from None
        return await run_in_threadpool(work)


Svc = Annotated[Services, Depends(services_dependency)]
Actor = Annotated[User, Depends(current_user_dependency)]
Id = Annotated[int, PathParam(ge=1, le=2**53, description="A record id")]
Name = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


def start_session(request: Request, response: Response, svc: Services, name: str, password: str) -> tuple[User, str]:
    """Check credentials (throttled per account and address, in the database); set the session and CSRF cookies."""
    address = client_address(request, svc.ctx.config.api.trusted_proxies)
    user, token = svc.users.login(name, password, address=address)
    secure = bool(request.app.state.secure_cookies)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=SESSION_S)
    response.set_cookie(CSRF_COOKIE, new_csrf(), httponly=False, samesite="strict", secure=secure, max_age=SESSION_S)
    return user, token


async def save_upload(upload: UploadFile, folder: Path) -> Path:
    """Write an upload (at most 20 MiB) into `folder`; returns its path."""
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise InputError(
            Phrase("{file} is larger than {mib} MiB", file=upload.filename, mib=MAX_UPLOAD // 2**20),
            hint="send a smaller photo",
        )
    path = folder / f"upload-{len(list(folder.iterdir()))}"
    path.write_bytes(data)
    return path


@contextmanager
def _uploads_named(names: dict[Path, str]) -> Iterator[None]:
    """Errors about uploaded files name them as the user did, never by the server's temporary path."""
    try:
        yield
    except KuzetError as exc:
        for path, name in names.items():
            said = exc.message
            exc.message = (
                said.renamed(str(path), repr(name)) if isinstance(said, Phrase) else said.replace(str(path), repr(name))
            )
        exc.args = (exc.message,)
        raise


async def request_with_upload(
    svc: Services, actor: User, req: WatchlistRequest, photo: UploadFile | None, *, plate: str | None = None
) -> int:
    """File a watchlist request whose photo arrived as an upload, or a plate request (API and dashboard)."""
    if photo is None or not photo.filename:  # a browser sends an empty file field when no photo was chosen
        return await asyncio.to_thread(svc.watchlists.request, actor, req, None, plate=plate or None)
    with tempfile.TemporaryDirectory() as tmp:
        path = await save_upload(photo, Path(tmp))
        with _uploads_named({path: photo.filename or "the photo"}):
            return await asyncio.to_thread(svc.watchlists.request, actor, req, path, plate=plate or None)


async def enrol_with_uploads(
    svc: Services,
    actor: User,
    name: str,
    photos: list[UploadFile],
    *,
    consent: str,
    scope: list[str] | None,
    expires: str | None,
) -> tuple[int, str, int]:
    """Request an enrolment whose photos arrived as uploads (API and dashboard): (person id, name, photos added)."""
    from kuzet.governance.watchlists import parse_expiry

    until = parse_expiry(expires, option="expires") if expires else None
    with tempfile.TemporaryDirectory() as tmp:
        paths = [await save_upload(p, Path(tmp)) for p in photos]
        names = {path: p.filename or f"photo {i + 1}" for i, (path, p) in enumerate(zip(paths, photos, strict=True))}
        with _uploads_named(names):
            result = await asyncio.to_thread(
                svc.gallery.enroll, actor, name, paths, consent=consent, scope=scope or None, expires=until
            )
    return result.identity.person_id, result.identity.name, result.added
