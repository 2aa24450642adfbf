"""Files only their owner can read: the data directory is 0700 and everything kuzet writes in it 0600.

The modes are set explicitly (not left to the umask), so a data directory created under the usual 022 umask is
still private, and one created by an older kuzet is tightened the next time it is opened.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` if needed, with every folder it creates owner-only (0700); make `path` itself 0700."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another thread or process
            folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def tighten(path: Path) -> None:
    """Make an existing file owner-only (0600); nothing happens when it does not exist."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            os.chmod(path, FILE_MODE)


def write_private(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write `data` to `path` atomically (a temporary file renamed over it), owner-only whatever the umask."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def append_private(path: Path, line: str, *, sync: bool = True) -> None:
    """Append one line to `path` (created owner-only), flushed to disk when `sync`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        os.fchmod(f.fileno(), FILE_MODE)
        f.write(line if line.endswith("\n") else line + "\n")
        if sync:
            f.flush()
            os.fsync(f.fileno())
