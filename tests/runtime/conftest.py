"""Real servers for the live-camera tests: GStreamer's RTSP server and Debian's mosquitto, on loopback."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.servers import RtspServer, free_port


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `predicate()` until it is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def rtsp(video_dir: Path, tmp_path: Path) -> Iterator[RtspServer]:
    """The sample videos as RTSP cameras: `stage` (Hamilton clip), `road` (car video), `people` (one by one)."""
    server = RtspServer(
        {
            "stage": video_dir / "short_hamilton_clip.mp4",
            "road": video_dir / "car-detection.mp4",
            "people": video_dir / "one-by-one-person-detection.mp4",
        },
        tmp_path / "rtsp.log",
    )
    server.start()
    yield server
    server.stop()


class Broker:
    """A mosquitto broker on loopback that requires a user name and password."""

    def __init__(self, port: int, user: str, password: str, proc: subprocess.Popen[bytes]) -> None:
        self.port, self.user, self.password, self.proc = port, user, password, proc


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """Debian's mosquitto, password-protected, started for the test."""
    port = free_port()
    passwd = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "kuzet", "broker-pass-1"], check=True)
    passwd.chmod(0o600)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        # `user`: run as whoever runs the tests (as root, mosquitto would otherwise switch to a user who cannot
        # read the password file)
        f"user {pwd.getpwuid(os.geteuid()).pw_name}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwd}\npersistence false\n",
        encoding="utf-8",
    )
    log = (tmp_path / "mosquitto.log").open("ab")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"  # Debian puts it in sbin, not always on PATH
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 10, "mosquitto to listen")
    yield Broker(port, "kuzet", "broker-pass-1", proc)
    proc.terminate()
    proc.wait(5)
    log.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a camera that never answers)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield int(sock.getsockname()[1])
    sock.close()
