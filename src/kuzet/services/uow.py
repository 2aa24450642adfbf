"""The audited unit of work: every change, and every refusal, goes to the ledger in the same transaction.

A service opens `tx()` for an action: it gets the session's repositories and the ledger, writes its audit entries
with `audit`, and on leaving the block the transaction ends with a signed checkpoint, written ahead to the outside
copy before the commit and handed to the witnesses after it. Plain reads open `read()` instead: no lock, no entry.
A refusal (a permission a role lacks, a policy breach) is written by `refuse` in a transaction of its own, so that
it survives the refused action.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from kuzet.audit.ledger import AuditLedger, Checkpoint, Details, NewEntry
from kuzet.audit.signing import LedgerSigner
from kuzet.core.errors import PermissionDenied, PolicyRefusal
from kuzet.core.i18n import Phrase
from kuzet.core.types import User
from kuzet.services import permissions
from kuzet.services.context import ServiceContext
from kuzet.services.group_commit import DEFERRED, GroupCommit
from kuzet.store.repositories.alerts import AlertRepository
from kuzet.store.repositories.changes import ChangeFeed
from kuzet.store.repositories.events import EventRepository
from kuzet.store.repositories.gallery import GalleryRepository
from kuzet.store.repositories.holds import GrantRepository, HoldRepository
from kuzet.store.repositories.outbox import OutboxRepository
from kuzet.store.repositories.subjects import SubjectRepository
from kuzet.store.repositories.traffic import TrafficRepository
from kuzet.store.repositories.users import ThrottleRepository, UserRepository
from kuzet.store.repositories.watchlists import WatchlistRepository

log = logging.getLogger("kuzet")
R = TypeVar("R")
SYSTEM = "system"
ANONYMOUS = "anonymous"
MIN_JUSTIFICATION = 10
"""Characters a written justification or reason needs at the least."""
MAX_JUSTIFICATION = 2000
"""Characters a written justification or reason may have at the most (the API's request models allow as many)."""


class Refused(Exception):
    """A policy refusal found inside a transaction: the transaction rolls back, then the refusal is ledgered."""

    def __init__(self, reason: str, hint: str = "see docs/governance.md") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class _Repository(Generic[R]):
    """A repository of the transaction, made on first use (a read that needs one repository builds one)."""

    def __init__(self, kind: Callable[[Session], R]) -> None:
        self.kind = kind
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, work: Work, owner: type | None = None) -> R:
        repo = self.kind(work.session)
        work.__dict__[self.name] = repo
        return repo


class Work:
    """One transaction: its session, the ledger, and a repository for each aggregate."""

    users = _Repository(UserRepository)
    throttle = _Repository(ThrottleRepository)
    gallery = _Repository(GalleryRepository)
    events = _Repository(EventRepository)
    watchlists = _Repository(WatchlistRepository)
    alerts = _Repository(AlertRepository)
    traffic = _Repository(TrafficRepository)
    subjects = _Repository(SubjectRepository)
    holds = _Repository(HoldRepository)
    grants = _Repository(GrantRepository)
    outbox = _Repository(OutboxRepository)
    changes = _Repository(ChangeFeed)

    def __init__(self, session: Session, ledger: AuditLedger, origin: str) -> None:
        self.session = session
        self.ledger = ledger
        self.origin = origin

    def audit(
        self,
        actor: User | None,
        action: str,
        *,
        object: str = "",
        justification: str = "",
        details: Details | None = None,
        anonymous: bool = False,
    ) -> None:
        """Append a ledger entry for `actor` (the system when None; "anonymous" for a failed sign-in)."""
        self.ledger.append(
            actor=ANONYMOUS if anonymous else (actor.name if actor else SYSTEM),
            action=action,
            object=object,
            justification=justification,
            details=details,
            source=self.origin,
        )


class AuditedUnitOfWork:
    """Transactions with their audit entries and checkpoints, refusals, and the permission check."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._group = GroupCommit(self._commit_entries)
        self._open = threading.local()  # how many transactions this thread has open

    @contextmanager
    def tx(self, *, signer: LedgerSigner | None = None, pipelined: bool = False) -> Iterator[Work]:
        """One transaction for an action and its audit entries, closed by a signed checkpoint.

        The checkpoint is written to the outside copy before the commit (see `audit.checkpoint_log`): nothing is
        committed that the copy lacks. After the commit it is handed to the witnesses, in this process's commit
        order, and marked committed in the copy.
        """
        ctx = self.ctx
        _own_entries_first()
        cp: Checkpoint | None = None
        self._open.depth = getattr(self._open, "depth", 0) + 1
        # The witnesses get this process's checkpoints in commit order: the next transaction of this process waits
        # until this one's checkpoint is queued (other processes publish their own: see docs/governance.md).
        with ctx.db.writer_lock:
            try:
                with ctx.db.session(pipelined=pipelined) as session:
                    ledger = AuditLedger(session, clock=ctx.clock.now)
                    yield Work(session, ledger, ctx.origin)
                    cp = ledger.checkpoint(signer or ctx.signer)
                    if cp is not None:
                        ctx.checkpoint_log.prepare(cp)
            except BaseException:
                if cp is not None:
                    try:
                        ctx.checkpoint_log.rolled_back(cp)
                    except OSError as exc:
                        log.error("could not mark checkpoint %s as rolled back: %s", cp.checkpoint_id, exc)
                raise
            finally:
                self._open.depth -= 1
            if cp is not None:
                ctx.witnesses.publish(cp)
        if cp is not None:
            try:
                ctx.checkpoint_log.committed(cp)
            except OSError as exc:
                # Committed and prepared in the copy already: the copy is not behind; only the marker is missing.
                log.error("could not mark checkpoint %s as committed: %s", cp.checkpoint_id, exc)

    @contextmanager
    def read(self) -> Iterator[Work]:
        """A read transaction (no lock, no ledger entry): for plain reads that are not anyone's data."""
        _own_entries_first()
        with self.ctx.db.read() as session:
            yield Work(session, AuditLedger(session, clock=self.ctx.clock.now), self.ctx.origin)

    def record(
        self,
        actor: User | None,
        action: str,
        *,
        object: str = "",
        justification: str = "",
        details: Details | None = None,
    ) -> None:
        """One ledger entry, committed (with a signed checkpoint) before this returns.

        Entries recorded at the same time by several threads (the requests a server answers at once) are appended
        in one transaction with one checkpoint: see `GroupCommit`. Within a request of the API the entry is queued
        and this returns at once; the request's answer waits for it (`group_commit.Deferred`). Never call it inside
        an open `tx()`.
        """
        if getattr(self._open, "depth", 0):
            # the commit needs the write lock this thread holds: it would wait for itself
            raise RuntimeError(f"record({action!r}) inside an open transaction: write it with w.audit instead")
        entry = NewEntry(actor.name if actor else SYSTEM, action, object, justification, details, self.ctx.origin)
        deferred = DEFERRED.get()
        if deferred is not None and deferred.open:
            deferred.futures.append(self._group.enqueue(entry))
        else:
            self._group.submit(entry)

    def close(self) -> None:
        """Commit the entries still queued (and stop the committer thread)."""
        self._group.close()

    def _commit_entries(self, entries: list[NewEntry]) -> None:
        # Only the ledger's own statements run in this transaction: on PostgreSQL they are pipelined (three round
        # trips while the write lock is held instead of five; see `kuzet.audit.ledger_sql`).
        with self.tx(pipelined=True) as w:
            w.ledger.append_many(entries)

    def refuse(self, actor: User | None, action: str, *, object: str, reason: str, hint: str = "") -> PolicyRefusal:
        """Record a refusal in its own transaction (it must survive the failed action) and build the error."""
        self.record(actor, action, object=object, justification=reason)
        return PolicyRefusal(reason, hint=hint or "see docs/governance.md")

    def justified(self, actor: User, action: str, text: str, *, object: str, reason: str, hint: str = "") -> str:
        """`text` stripped, or a refusal (ledgered) when it is not the length of a written reason.

        Shorter than MIN_JUSTIFICATION: refused with `reason` and `hint`; longer than MAX_JUSTIFICATION: refused
        saying so. Services check it before any work, so every way in (command line, API, web) gets the same answer.
        """
        text = text.strip()
        if len(text) < MIN_JUSTIFICATION:
            raise self.refuse(actor, action, object=object, reason=reason, hint=hint)
        if len(text) > MAX_JUSTIFICATION:
            too_long = Phrase(
                "the written reason has {length} characters, more than the {most} allowed",
                length=len(text),
                most=MAX_JUSTIFICATION,
            )
            hint = "shorten it: keep the full text in the case file and give its reference"
            raise self.refuse(actor, action, object=object, reason=too_long, hint=hint)
        return text

    def deny(self, actor: User, action: str, *, object: str, reason: str, hint: str) -> PermissionDenied:
        """Record a refusal for want of a right (in its own transaction) and build the error."""
        self.record(actor, action, object=object, justification=reason)
        return PermissionDenied(reason, hint=hint)

    def require(self, actor: User, permission: str) -> None:
        """Refuse, and ledger the refusal, unless `actor` holds `permission` (the table in `permissions`)."""
        try:
            permissions.check(actor, permission)
        except PermissionDenied as exc:
            self.record(
                actor, "permission.denied", object=permissions.PERMISSIONS[permission].action, justification=exc.message
            )
            raise

    def screen(self, actor: User, action: str, obj: str, fields: dict[str, str]) -> None:
        """Refuse (audited) free text longer than MAX_JUSTIFICATION or that carries a prohibited label."""
        self.capped(actor, action, obj, fields)
        refusal = self.ctx.policy.screener.screen_all(fields)
        if refusal is not None:
            raise self.refuse(actor, action, object=obj, reason=refusal.reason)

    def capped(self, actor: User, action: str, obj: str, fields: dict[str, str], most: int = MAX_JUSTIFICATION) -> None:
        """Refuse (audited) a free-text field longer than `most` characters, before anything is done with it."""
        for field, value in fields.items():
            if len(value) > most:
                said = Phrase("{field} has {length} characters, more than the {most} allowed", field=field,
                              length=len(value), most=most)  # fmt: skip
                raise self.refuse(actor, action, object=obj, reason=said, hint="shorten it")


def _own_entries_first() -> None:
    """Within a request, wait for the entries it has queued: its later reads and writes come after them."""
    deferred = DEFERRED.get()
    if deferred is not None and deferred.futures:
        deferred.wait()
