"""`kuzet serve` as a user runs it: a real process on a loopback port, for tests that attack the API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.servers import free_port

KUZET = str(Path(sys.executable).parent / "kuzet")


class KuzetServe:
    """`kuzet --data-dir DIR serve --port PORT` in a process of its own."""

    def __init__(self, data_dir: Path, log: Path, *, config: Path | None = None, env: dict[str, str] | None = None):
        self.data_dir = data_dir
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
        args += ["serve", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=out, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kuzet serve exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"kuzet serve did not answer: {self.log.read_text(errors='replace')[-2000:]}")

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
            self.proc = None
