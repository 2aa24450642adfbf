"""Delivery from the outbox: what live cameras stored, sent to MQTT and webhooks at least once, in order.

A camera worker writes its notices into the outbox in the transaction that stores its decisions; `kuzet run`
relays them from there. Each destination (the broker, each webhook) has a cursor in the database: the last
outbox id it received (acknowledged by the broker, answered by the webhook, or given up on after the webhook's
`max_attempts`). A crash anywhere between a commit and a delivery only delays it: the next `kuzet run` starts
each destination after its cursor, with the same delivery ids, so receivers can drop repeats. A destination seen
for the first time starts at the newest notice (no history is replayed to a new receiver). Notices every
destination received are deleted; undelivered ones go with the events they announce, by retention.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from kuzet.core.errors import KuzetError
from kuzet.services.container import Services
from kuzet.store.repositories.outbox import OutboxItem

log = logging.getLogger("kuzet.run")


class Destination(Protocol):
    """Somewhere stored notices go, in outbox order."""

    key: str

    def offer(self, item: OutboxItem) -> None:
        """Start delivering `item` (after every item offered before it)."""

    def received_upto(self) -> int | None:
        """The id up to which everything offered arrived (None: no progress since last asked)."""

    def in_flight(self) -> int:
        """Items offered and not yet arrived."""

    def rewind(self) -> int | None:
        """An id to offer again after, when the destination lost what was offered (else None)."""


class OutboxRelay:
    """Offers new outbox items to each destination and records each one's progress; call `pump` often."""

    def __init__(
        self,
        services: Services,
        destinations: list[Destination],
        *,
        interval_s: float = 0.2,
        batch: int = 200,
        max_in_flight: int = 1000,
    ) -> None:
        self.services = services
        self.destinations = destinations
        self.interval_s = interval_s
        self.batch = batch
        self.max_in_flight = max_in_flight
        self.cursors: dict[str, int] = {}
        """destination -> the last id recorded as received."""
        self.sent: dict[str, int] = {}
        """destination -> the last id offered."""
        self.trimmed = 0
        self._moved: dict[str, int] = {}
        self._last = 0.0

    def start(self) -> None:
        """Read every destination's cursor; a new destination starts at the newest notice (call before workers run).

        Raises:
            StoreError: The database cannot be used (`kuzet run` does not start without it).
        """
        if self.destinations and not self.cursors:
            self._start()

    def _start(self) -> None:
        uow, now = self.services.uow, self.services.ctx.now()
        with uow.tx() as w:
            cursors = w.outbox.cursors()
            head = w.outbox.head()
            for d in self.destinations:
                if d.key not in cursors:
                    w.outbox.advance(d.key, head, now=now)
                    cursors[d.key] = head
        self.cursors = {d.key: cursors[d.key] for d in self.destinations}
        self.sent = dict(self.cursors)

    def pump(self, *, force: bool = False) -> int:
        """Offer what is new, record progress; returns how many items were offered. Errors are logged, not raised."""
        if not self.destinations or (not force and time.monotonic() - self._last < self.interval_s):
            return 0
        self._last = time.monotonic()
        try:
            if not self.cursors:
                self._start()
            offered = self._offer()
            self.record_progress()
        except KuzetError as exc:  # a busy or unreachable database: the next pump tries again
            log.warning("kuzet run: outbox not relayed now: %s", exc.message)
            return 0
        except Exception:  # anything else (a disk error, a client library's): logged; delivery waits, kuzet runs on
            log.exception("kuzet run: outbox not relayed now")
            return 0
        return offered

    def _offer(self) -> int:
        offered = 0
        for d in self.destinations:
            back = d.rewind()
            if back is not None:
                self.sent[d.key] = max(back, self.cursors[d.key])
            room = min(self.batch, self.max_in_flight - d.in_flight())
            if room <= 0:
                continue
            with self.services.uow.read() as r:
                items = r.outbox.after(self.sent[d.key], limit=room)
            for item in items:
                d.offer(item)
                self.sent[d.key] = item.id
            offered += len(items)
        return offered

    def record_progress(self) -> None:
        """Write each destination's new cursor, and delete what every destination received."""
        for d in self.destinations:
            upto = d.received_upto()
            if upto is not None and upto > self.cursors.get(d.key, 0):
                self._moved[d.key] = max(upto, self._moved.get(d.key, 0))
        if not self._moved:
            return
        now = self.services.ctx.now()
        with self.services.uow.tx() as w:  # kept in `_moved` until written: a failed write is tried again
            for key, upto in self._moved.items():
                w.outbox.advance(key, upto, now=now)
            self.trimmed += w.outbox.trim([d.key for d in self.destinations])
        self.cursors.update(self._moved)
        self._moved = {}
