"""Fair turns at SQLite's write lock for the processes that share one database file.

A writer that finds an SQLite database locked sleeps and tries again (after 1, 2, 5, ... up to 100 ms). Two busy
processes on one file (`kuzet serve --workers 2`, the camera workers of `kuzet run`) then do not share the lock: the
one that has just committed takes it again at once while the other sleeps, and every request the other holds waits.
Under `wrk -c100` one worker of two used twice the CPU of the other, and the p99 was the sleeper's.

So each process first takes its turn here, with two file locks (`flock`) beside the database: it queues at the
turnstile, takes the writer lock, and leaves the turnstile. A process that has just written must pass the turnstile
again, where the waiting one stands, so busy processes take turns. The waits poll (the process next in line every
0.2 ms, the others less often) so that they give up
at the lock timeout ("the database is busy") instead of hanging behind a stopped process; the kernel drops a dead
process's locks. SQLite's own lock still guards the data: a turn only orders who asks for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kuzet.core.errors import StoreError
from kuzet.store.files import FILE_MODE, tighten

POLL_S = 0.0002
"""How often the process next in line looks at the writer lock again."""
GATE_POLL_S = 0.002
"""How often, at most, the others look at the turnstile (from POLL_S, doubling): only one process polls fast."""


class WriterTurns:
    """The turnstile and writer locks of one SQLite file, as one process holds them.

    Call `turn` with the process's own writer lock held: one thread of a process at a time comes here.
    """

    def __init__(self, database: Path, timeout_s: float) -> None:
        self.paths = (database.with_name(f"{database.name}-turnstile"), database.with_name(f"{database.name}-writer"))
        self.timeout_s = timeout_s
        self._fds: tuple[int, int] | None = None
        self._pid = 0
        self._depth = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold this process's turn to write for the block (a nested call holds the turn it is in)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        gate, writer = self._open()
        deadline = time.monotonic() + self.timeout_s
        _take(gate, deadline, GATE_POLL_S)
        try:
            _take(writer, deadline, POLL_S)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            fcntl.flock(writer, fcntl.LOCK_UN)

    def _open(self) -> tuple[int, int]:
        if self._fds is not None and self._pid == os.getpid():
            return self._fds
        self.close()  # a forked child's copies would share the parent's locks: it opens its own
        fds = []
        for path in self.paths:
            fds.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))
            tighten(path)
        self._fds, self._pid = (fds[0], fds[1]), os.getpid()
        return self._fds

    def close(self) -> None:
        """Close the lock files (a turn held ends with them)."""
        if self._fds is not None:
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds = None


def _take(fd: int, deadline: float, longest_s: float) -> None:
    pause = POLL_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise StoreError(
                    "the database is busy (another process holds its write lock)", hint="retry in a moment"
                ) from None
            time.sleep(pause)
            pause = min(2 * pause, longest_s)
