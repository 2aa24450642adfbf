"""The camera wall's pictures are made while someone watches them: the watch mark the web leaves for `kuzet run`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kuzet.core.errors import NotFoundError
from kuzet.store.status import WALL_WATCH_S, mark_wall_watched, wall_path, wall_watched


def test_a_watch_mark_lasts_its_window_and_is_owner_only(tmp_path: Path) -> None:
    now = time.time()
    assert not wall_watched(tmp_path, "gate-2", now=now)  # never asked for
    old = os.umask(0o022)
    try:
        mark_wall_watched(tmp_path, "gate-2")
    finally:
        os.umask(old)
    mark = wall_path(tmp_path, "gate-2").with_suffix(".watched")
    assert mark.stat().st_mode & 0o077 == 0 and mark.parent.stat().st_mode & 0o077 == 0
    assert wall_watched(tmp_path, "gate-2", now=time.time())
    assert not wall_watched(tmp_path, "gate-2", now=time.time() + WALL_WATCH_S + 1)  # nobody came back
    assert not wall_watched(tmp_path, "gate-3", now=time.time())  # one camera's viewer is not another's
    os.utime(mark, (now - 100, now - 100))
    mark_wall_watched(tmp_path, "gate-2")  # asked again: the window starts over
    assert wall_watched(tmp_path, "gate-2", now=time.time())


@pytest.mark.parametrize("name", ["../status", "", ".hidden", "a/b"])
def test_a_watch_mark_cannot_be_put_outside_the_wall_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(NotFoundError):
        mark_wall_watched(tmp_path, name)
    assert not any(tmp_path.rglob("*.watched"))
