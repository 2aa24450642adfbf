"""The camera wall's pictures are made while someone watches them: the watch mark the web leaves for `kuzet run`."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kuzet.app import Kuzet
from kuzet.core.errors import NotFoundError, PermissionDenied
from kuzet.store.status import WALL_WATCH_S, mark_wall_watched, wall_path, wall_watched, write_wall_frame
from tests.conftest import PASSWORD


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


def test_many_viewers_at_once_all_mark_the_camera(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: mark_wall_watched(tmp_path, "gate-2"), range(200)))
    assert wall_watched(tmp_path, "gate-2", now=time.time())
    assert [p.name for p in wall_path(tmp_path, "gate-2").parent.iterdir()] == ["gate-2.watched"]


def test_only_a_camera_with_a_picture_is_marked_and_only_for_a_viewer(tmp_path: Path) -> None:
    svc = Kuzet(tmp_path)
    try:
        admin = svc.init_admin("admin", PASSWORD)
        requester = svc.services.users.add(admin, "requester", PASSWORD, ["requester"])
        with pytest.raises(NotFoundError):  # a made-up name: no picture, and no file left behind
            svc.services.cameras.snapshot(admin, "made-up-camera")
        write_wall_frame(tmp_path, "gate-2", b"jpeg")
        with pytest.raises(PermissionDenied):  # no camera right: nothing marked
            svc.services.cameras.snapshot(requester, "gate-2")
        assert not any(tmp_path.rglob("*.watched"))
        assert svc.services.cameras.snapshot(admin, "gate-2")[0] == b"jpeg"
        assert wall_watched(tmp_path, "gate-2", now=time.time())
    finally:
        svc.close()
