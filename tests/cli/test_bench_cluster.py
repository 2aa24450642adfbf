"""`bench/bench_cluster.py` stops the PostgreSQL server it started when it is told to stop (SIGTERM)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A folder the `postgres` user can reach (pytest's own are its owner's only), for the server run as root."""
    folder = Path(tempfile.mkdtemp(prefix="kuzet-bench-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_sigterm_stops_the_benchs_private_postgresql(reachable_tmp: Path) -> None:
    """Sent SIGTERM while measuring, the bench once left its server running and its files behind (`finally` skipped)."""
    tmp_path = reachable_tmp
    env = dict(os.environ, TMPDIR=str(tmp_path))  # where the bench's server makes its folder
    command = [sys.executable, "-m", "bench.bench_cluster", "--seconds", "1", "--out", str(tmp_path / "cluster.json")]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as bench:
        try:
            deadline = time.monotonic() + 120
            pid_file = None
            while time.monotonic() < deadline and bench.poll() is None:
                found = list(tmp_path.glob("kuzet-pg-*/data/postmaster.pid"))
                lines = found[0].read_text().splitlines() if found else []
                if len(lines) > 3 and _accepting(int(lines[3])):
                    pid_file = found[0]
                    break
                time.sleep(0.2)
            assert pid_file is not None, f"the bench's server never accepted connections: {bench.returncode}"
            postmaster = int(pid_file.read_text().split()[0])
            bench.send_signal(signal.SIGTERM)
            _, err = bench.communicate(timeout=60)
        finally:
            bench.kill()
    assert bench.returncode == 128 + signal.SIGTERM, err
    deadline = time.monotonic() + 30
    while _alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(postmaster), "the server outlived the bench"
    assert not list(tmp_path.glob("kuzet-pg-*")), "the server's folder outlived the bench"
