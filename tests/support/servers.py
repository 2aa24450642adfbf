"""Loopback servers shared by the live-camera tests and `bench/bench_live.py`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
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


class VlcRtspServer:
    """VLC's RTSP output (Debian's `cvlc`) serving one video at rtsp://127.0.0.1:PORT/NAME, looping.

    A second, different RTSP server beside GStreamer's: it offers RTP over UDP only (a TCP SETUP is refused), as some
    cameras and relays do. VLC refuses to run as root, so as root it runs as `nobody` (through setpriv), on a copy
    of the video that user can read.
    """

    def __init__(self, name: str, video: Path, log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log
        self.folder = Path(tempfile.mkdtemp(prefix="kuzet-vlc-"))
        self.folder.chmod(0o755)
        self.video = self.folder / video.name
        shutil.copyfile(video, self.video)
        self.video.chmod(0o644)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.name}"

    def start(self) -> None:
        cvlc = shutil.which("cvlc")
        if cvlc is None:
            raise RuntimeError("cvlc is missing: `make install-test` installs Debian's vlc-bin and vlc-plugin-base")
        args = [cvlc, "-q", "--loop", "--no-audio", str(self.video)]
        args += ["--sout", f"#rtp{{sdp=rtsp://127.0.0.1:{self.port}/{self.name}}}", "--sout-keep"]
        if os.geteuid() == 0:
            args = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *args]
        out = self.log.open("ab")
        env = {**os.environ, "HOME": str(self.folder)}
        self.proc = subprocess.Popen(args, stdout=out, stderr=out, env=env)
        out.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"VLC did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        shutil.rmtree(self.folder, ignore_errors=True)


def transcode(src: Path, dst: Path, *, width: int, height: int, gop: int = 30) -> Path:
    """`src` re-encoded as H.264 at another size, same frame times (a camera's other stream), into an MP4 at `dst`."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ins = inp.streams.video[0]
        rate = ins.average_rate
        outs = out.add_stream("libx264", rate=rate)
        outs.width, outs.height, outs.pix_fmt = width, height, "yuv420p"
        # the input's time base, not 1/rate: rounding to a 1/29.97 s grid moved every frame by half a frame (15 ms),
        # so the two streams' pictures of one moment were half a frame apart and "the nearest" was a coin toss
        outs.codec_context.time_base = outs.time_base = ins.time_base
        outs.options = {"preset": "ultrafast", "g": str(gop), "bf": "0"}
        for frame in inp.decode(ins):
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            for packet in outs.encode(scaled):
                out.mux(packet)
        for packet in outs.encode(None):
            out.mux(packet)
    return dst
