"""Loopback servers shared by the live-camera tests and `bench/bench_live.py`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has PyGObject (python3-gi) for gst-rtsp-server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RtspServer:
    """gst-rtsp-server serving video files at rtsp://127.0.0.1:PORT/NAME; can be killed, restarted and frozen."""

    def __init__(self, mounts: dict[str, Path], log: Path) -> None:
        self.mounts = mounts
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        args = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, path in self.mounts.items():
            args += ["--mount", f"{name}={path}"]
        out = self.log.open("ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=out)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.proc.stdout.close()  # it says "ready" once, and nothing after
        out.close()
        if line.strip() != b"ready":
            raise RuntimeError(f"the RTSP server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the connection drops without a goodbye."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: the connection stays open and nothing more arrives (a stalled stream)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
