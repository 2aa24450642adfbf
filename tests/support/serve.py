"""`kuzet serve` as a user runs it: a real process on a loopback port, for tests that attack the API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.servers import free_port

KUZET = str(Path(sys.executable).parent / "kuzet")


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...; the name may hold spaces and ")").

    Raises:
        OSError: The process does not exist (any more).
    """
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


LISTEN, ESTABLISHED = "0A", "01"


def tcp_sockets(pid: int, port: int, state: str) -> set[int]:
    """The inodes of the TCP sockets process `pid` holds on local port `port` in `state` (from /proc).

    Raises:
        OSError: The process does not exist (any more).
    """
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # a descriptor closed meanwhile
            target = os.readlink(fd)
            if target.startswith("socket:["):
                held.add(int(target[8:-1]))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state and int(fields[9]) in held:
                found.add(int(fields[9]))
    return found


class KuzetServe:
    """`kuzet --data-dir DIR serve --port PORT [ARGS]` in a process of its own."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        *,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ):
        self.data_dir = data_dir
        self.args = args
        self.log = log
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> KuzetServe:
        args = [KUZET, "--data-dir", str(self.data_dir)]
        if self.config is not None:
            args += ["--config", str(self.config)]
        args += ["serve", "--port", str(self.port), *self.args]
        with self.log.open("ab") as out:
            # a process group of its own: `kill` reaches every worker of `serve --workers N` at once
            self.proc = subprocess.Popen(args, stdout=out, stderr=out, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kuzet serve exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200 and self._all_listening():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()  # not left running behind the failed test
        raise RuntimeError(f"kuzet serve did not answer: {self.log.read_text(errors='replace')[-2000:]}")

    def _all_listening(self) -> bool:
        """With `--workers N`: whether all N listen (the first one up answers; each listens once its app is built)."""
        wanted = int(self.args[self.args.index("--workers") + 1]) if "--workers" in self.args else 1
        if wanted == 1:
            return True  # one process: it serves itself
        workers = self.workers()
        try:
            return len(workers) == wanted and all(tcp_sockets(pid, self.port, LISTEN) for pid in workers)
        except OSError:
            return False  # a worker ended meanwhile (the supervisor starts another)

    @property
    def pid(self) -> int:
        """The server's (the parent's, with `--workers N`) process id."""
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the server and every process it started (as a power cut or the OOM killer would), and reap it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def workers(self) -> list[int]:
        """The pids of the server's worker processes (`serve --workers N`; none with one process)."""
        assert self.proc is not None
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            pid = int(stat.parent.name)
            try:
                fields = proc_stat(pid)
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == self.proc.pid and b"spawn_main" in cmdline:
                found.append(pid)
        return found

    @staticmethod
    def cpu_ticks(pid: int) -> int:
        """CPU time a process has used so far (user and system, in clock ticks)."""
        fields = proc_stat(pid)
        return int(fields[11]) + int(fields[12])

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            # whatever of its group is left (workers of `--workers N` whose parent a test killed)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None
