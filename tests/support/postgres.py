"""A real PostgreSQL server for the tests: a private cluster on a loopback port, started and stopped by the tests.

It uses the PostgreSQL binaries the system has (Debian's `postgresql` package, installed by `make test`). PostgreSQL
refuses to run as root, so under root the cluster belongs to the `postgres` user the package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.servers import free_port

USER = "kuzet"


def bin_dir() -> Path:
    """Where initdb and pg_ctl are (the newest installed major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed: run `make test-system-deps` (Debian package postgresql)")
    return Path(initdb).parent


class PostgresServer:
    """One PostgreSQL cluster in a folder of its own, reachable at 127.0.0.1:`port` as user `kuzet` (trust auth)."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="kuzet-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres")

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:  # what the tool and the server said: a failed start is otherwise unexplained
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no server log)"
            raise RuntimeError(
                f"{Path(args[0]).name} {args[1:3]} failed ({done.returncode}): {done.stdout[-1000:]}"
                f"{done.stderr[-1000:]}\nserver log:\n{log}"
            )

    def start(self) -> PostgresServer:
        """Create the cluster (first time) and start it; returns when it accepts connections."""
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                      "--no-locale")  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300 -c timezone=UTC"
        # -t: crash recovery after `stop("immediate")` replays the WAL since the last checkpoint, which after a
        # suite's worth of writes on a busy 2-core machine can outlast pg_ctl's default minute (see `checkpoint`)
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "300", "start")  # fmt: skip
        return self

    def checkpoint(self) -> None:
        """Write everything to the data files now: a crash after this replays only what was written since.

        For a test that crashes the server under its own load: the recovery is then that load's, not every earlier
        test's writes as well.
        """
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute("CHECKPOINT")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate` is a crash: no checkpoint, recovery at the next start)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends exit with it): a crash, as a power cut would leave it."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        # Backends notice the postmaster is gone and exit; the shared memory goes with the last one.
        time.sleep(1.0)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def close(self) -> None:
        """Stop the server and remove its files."""
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
