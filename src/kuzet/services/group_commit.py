"""Group commit of ledger entries, and entries a request commits while it goes on (answered only once they are).

`GroupCommit` appends the entries of concurrent callers in one transaction with one signed checkpoint. A caller
either waits for its entry (`submit`: the command line, workers) or, inside a request of the API, queues it and goes
on (`Deferred`): the server's committer thread commits it with the others, and the request's answer is held back
until every entry the request recorded is durable (`kuzet.api.security.AnswerAfterAudit`). Either way nobody is
answered on an entry that was not written; the deferred way frees the request's thread at once instead of parking it
in the thread pool for the length of a commit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from contextvars import ContextVar
from dataclasses import dataclass, field

from kuzet.audit.ledger import NewEntry
from kuzet.core.errors import KuzetError, StoreError

log = logging.getLogger("kuzet")


@dataclass(slots=True, eq=False)
class _Waiting:
    entry: NewEntry
    done: bool = False
    error: BaseException | None = None
    leader: _Waiting | None = None
    """Whose commit settled this entry (None: the committer thread's)."""
    future: Future[None] | None = None
    """Settled with the entry, for a request that went on without waiting (`Deferred`)."""


def _as_store_error(error: BaseException) -> StoreError:
    """Another caller's failed commit, as an exception of this caller's own (the same message for a KuzetError)."""
    if isinstance(error, KuzetError):
        return StoreError(error.message, hint=error.hint)
    return StoreError(f"the audit entry could not be written: {error}", hint="retry in a moment")


class GroupCommit:
    """Group commit of ledger entries: whoever arrives while no commit runs commits every entry waiting, in one go.

    A caller queues its entry; if no commit is under way it becomes the leader: it takes every queued entry (its
    own and those queued while the previous commit ran), commits them in one transaction with one signed
    checkpoint, and wakes their callers. Everyone else waits for the commit that holds their entry. Each caller
    returns only once its own entry is durable, or raises the commit's error: no request is answered on an entry
    that was not written. With one caller at a time (the command line) this is one transaction per entry, as before;
    under load, one transaction (one fsync, one signature) serves every request that arrived during the previous one.

    `enqueue` queues an entry without waiting; a committer thread (started on first use) leads for such entries.
    """

    def __init__(self, commit: Callable[[list[NewEntry]], None], *, max_batch: int = 2000) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Waiting] = []
        self._leading = False
        self._committer: threading.Thread | None = None
        self._closed = False

    def submit(self, entry: NewEntry) -> None:
        """Queue `entry` and return once it is committed (or raise why it could not be)."""
        me = _Waiting(entry)
        with self._cond:
            self._queue.append(me)
        while True:
            with self._cond:
                while self._leading and not me.done:
                    self._cond.wait()
                if me.done:
                    break
                batch = self._lead()
            self._commit_batch(batch, me)
        error = me.error
        if error is None:
            return
        if me.leader is me:  # this thread's own commit failed: its error as it was raised
            raise error
        raise _as_store_error(error) from error

    def enqueue(self, entry: NewEntry) -> Future[None]:
        """Queue `entry` for the committer thread; the future is settled once it is committed (or could not be)."""
        future: Future[None] = Future()
        # Running from now on, so it can no longer be cancelled: a request whose client went away cancels its wait
        # (asyncio passes that on to this future), but its entry is still written, and the committer thread, which
        # settles the future, must never find it cancelled.
        future.set_running_or_notify_cancel()
        me = _Waiting(entry, future=future)
        with self._cond:
            if self._closed:
                raise StoreError("the audit ledger is closed", hint="the server is stopping; retry in a moment")
            self._queue.append(me)
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_forever, name="kuzet-ledger", daemon=True)
                self._committer.start()
            self._cond.notify_all()
        assert me.future is not None
        return me.future

    def close(self) -> None:
        """Commit what is queued, then stop the committer thread (new entries are refused from now on)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            committer = self._committer
        if committer is not None:
            committer.join()

    def _lead(self) -> list[_Waiting]:
        """Take the next batch (the condition's lock held)."""
        self._leading = True
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        return batch

    def _commit_batch(self, batch: list[_Waiting], leader: _Waiting | None) -> None:
        error: BaseException | None = None
        try:
            self._commit([w.entry for w in batch])
        except BaseException as exc:  # every caller of the batch hears of it; a KeyboardInterrupt too
            error = exc
        with self._cond:
            for w in batch:
                w.error, w.done, w.leader = error, True, leader
            self._leading = False
            self._cond.notify_all()
        for w in batch:
            if w.future is None:
                continue
            try:
                if error is None:
                    w.future.set_result(None)
                else:
                    w.future.set_exception(_as_store_error(error))
            except InvalidStateError:  # settled already: nothing may stop the committer thread
                log.error("a ledger entry's future was settled twice (%s)", w.entry.action)

    def _commit_forever(self) -> None:
        """The committer thread: lead whenever entries wait and nobody else leads; stop when closed and drained."""
        while True:
            with self._cond:
                while self._leading or not self._queue:
                    if self._closed and not self._queue and not self._leading:
                        return
                    self._cond.wait()
                batch = self._lead()
            self._commit_batch(batch, None)


@dataclass(slots=True, eq=False)
class Deferred:
    """The ledger entries one request of the API has queued, and whether its answer has started.

    While `open`, `AuditedUnitOfWork.record` queues the request's entries instead of waiting for them; once the
    answer starts (a streamed body goes on after it) entries are waited for as everywhere else.
    """

    open: bool = True
    futures: list[Future[None]] = field(default_factory=list)

    def wait(self) -> None:
        """Block until every entry queued so far is committed (raises the first failure)."""
        for future in self.futures:
            future.result()

    async def settled(self) -> None:
        """Wait on the event loop until every entry queued so far is committed (raises the first failure)."""
        for future in list(self.futures):
            await asyncio.wrap_future(future)


DEFERRED: ContextVar[Deferred | None] = ContextVar("kuzet_deferred_audit", default=None)
"""Set by the API for each request (the context is copied into the thread pool with the route)."""
