"""Turns at SQLite's write lock: a process that has just written waits for the one already waiting; nobody waits
past the timeout behind a stopped process. Two `WriterTurns` over one file are two processes to `flock` (each opens
its own files), so threads of this test stand in for processes; tests/store/test_concurrency.py runs real ones."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from kuzet.core.errors import StoreError
from kuzet.store.turns import WriterTurns


def _waiting_at_turnstile(turns: WriterTurns) -> bool:
    fd = os.open(turns.paths[0], os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_the_one_that_just_wrote_waits_for_the_one_waiting(tmp_path: Path) -> None:
    a, b = WriterTurns(tmp_path / "k.db", 10), WriterTurns(tmp_path / "k.db", 10)
    order: list[str] = []

    def other() -> None:
        with b.turn():
            order.append("b")
            time.sleep(0.05)

    with a.turn():
        order.append("a")
        waiter = threading.Thread(target=other)
        waiter.start()
        deadline = time.monotonic() + 10
        while not _waiting_at_turnstile(a) and time.monotonic() < deadline:
            time.sleep(0.001)
    with a.turn():  # at once again, as a busy process would: b goes first
        order.append("a")
    waiter.join()
    assert order == ["a", "b", "a"]
    for path in a.paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_stopped_writer_makes_the_others_give_up_at_the_timeout_not_hang(tmp_path: Path) -> None:
    stuck, other = WriterTurns(tmp_path / "k.db", 10), WriterTurns(tmp_path / "k.db", 0.3)
    with stuck.turn():  # holds its turn and does not let go (SIGSTOP, a debugger)
        start = time.monotonic()
        with pytest.raises(StoreError, match="busy"), other.turn():
            pass
        assert 0.3 <= time.monotonic() - start < 5
    with other.turn():  # and once it lets go (or dies: the kernel drops its locks), the others go on
        pass


def test_a_nested_turn_holds_the_turn_it_is_in(tmp_path: Path) -> None:
    a, b = WriterTurns(tmp_path / "k.db", 10), WriterTurns(tmp_path / "k.db", 0.1)
    with a.turn():
        with a.turn():
            pass
        with pytest.raises(StoreError), b.turn():  # still a's turn after the inner block
            pass
    with b.turn():
        pass
