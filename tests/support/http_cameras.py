"""Loopback HTTP cameras for the live tests: MJPEG over HTTP (optionally behind Basic auth) and a live HLS stream.

Both serve frames of the sample videos, decoded (and for HLS re-encoded and segmented) with PyAV, paced by the wall
clock as a real camera is. Each counts the requests it answered, so a test can see how often a client connected.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np


def jpeg_frames(video: Path, *, count: int, width: int = 320) -> list[bytes]:
    """The first `count` frames of a video as JPEG files, `width` pixels wide."""
    out: list[bytes] = []
    with av.open(str(video)) as c:
        for frame in c.decode(video=0):
            bgr = frame.to_ndarray(format="bgr24")
            h, w = bgr.shape[:2]
            small = cv2.resize(bgr, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
            assert ok
            out.append(np.asarray(data).tobytes())
            if len(out) >= count:
                break
    return out


class _Server:
    """A threaded HTTP server on loopback with a request counter."""

    requests: int
    """Requests answered."""
    attempts: int
    """Requests that carried credentials (FFmpeg first asks without, and sends them after the 401's challenge)."""
    authorized: int
    """Requests whose credentials were right."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.requests = 0
        self.attempts = 0
        self.authorized = 0
        self.lock = threading.Lock()
        self.httpd = _OwnedServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def count(self) -> None:
        with self.lock:
            self.requests += 1

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _OwnedServer(ThreadingHTTPServer):
    owner: Any
    """The test server object whose counters and frames the handlers use."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    @property
    def owner(self) -> Any:
        server = self.server
        assert isinstance(server, _OwnedServer)
        return server.owner

    def log_message(self, format: str, *args: Any) -> None:
        return


class MjpegCamera(_Server):
    """multipart/x-mixed-replace JPEG frames at `fps` (wall clock) at http://127.0.0.1:PORT/video.mjpg, looping.

    With `credentials` ("user:password") every request without them gets 401, as a camera's web server answers.
    """

    def __init__(self, frames: list[bytes], *, fps: float = 10.0, credentials: str | None = None) -> None:
        self.frames = frames
        self.fps = fps
        self.credentials = credentials
        self.stopping = threading.Event()
        super().__init__(_MjpegHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def stop(self) -> None:
        self.stopping.set()
        super().stop()


class _MjpegHandler(_Handler):
    def do_GET(self) -> None:  # http.server calls it by this name
        cam: MjpegCamera = self.owner
        cam.count()
        if cam.credentials is not None:
            if "Authorization" in self.headers:
                with cam.lock:
                    cam.attempts += 1
            expected = "Basic " + base64.b64encode(cam.credentials.encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with cam.lock:
                cam.authorized += 1
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=kuzetframe")
        self.end_headers()
        start = time.monotonic()
        i = 0
        try:
            while not cam.stopping.is_set():
                delay = start + i / cam.fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                jpg = cam.frames[i % len(cam.frames)]
                head = f"--kuzetframe\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpg + b"\r\n")
                self.wfile.flush()
                i += 1
        except (BrokenPipeError, ConnectionResetError):
            return


def make_hls(video: Path, folder: Path, *, seconds: float, segment_s: float = 2.0, fps: int = 25) -> list[float]:
    """Encode the start of `video` as H.264 HLS segments (a key frame every second) into `folder`.

    Returns the segments' durations, in order (`seg0.ts`, `seg1.ts`, ...).
    """
    folder.mkdir(parents=True, exist_ok=True)
    playlist = folder / "vod.m3u8"
    with av.open(str(video)) as src:
        out = av.open(
            str(playlist),
            "w",
            format="hls",
            options={
                "hls_time": str(segment_s),
                "hls_list_size": "0",
                "hls_segment_filename": str(folder / "seg%d.ts"),
            },
        )
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps), "keyint_min": str(fps), "sc_threshold": "0"}
        for n, frame in enumerate(src.decode(video=0)):
            if n >= seconds * fps:
                break
            img = frame.reformat(width=640, height=360, format="yuv420p")
            img.pts, img.time_base = n, Fraction(1, fps)
            for packet in stream.encode(img):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        out.close()
    return [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", playlist.read_text())]


class HlsServer(_Server):
    """A live HLS stream at http://127.0.0.1:PORT/live.m3u8: each segment appears once its time has passed.

    The playlist slides (the newest `window` segments) as a live encoder's does; after the last segment it ends.
    """

    def __init__(self, folder: Path, durations: list[float], *, window: int = 4) -> None:
        self.folder = folder
        self.durations = durations
        self.window = window
        self.started = time.monotonic()  # the first segment is ready at once, the next one its duration later
        super().__init__(_HlsHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.m3u8"

    def playlist(self) -> str:
        elapsed = time.monotonic() - self.started
        ready, end = 0, 0.0
        for d in self.durations:
            if end + d > elapsed + self.durations[0]:
                break
            end += d
            ready += 1
        first = max(0, ready - self.window)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{int(max(self.durations) + 0.999)}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
        ]
        for i in range(first, ready):
            lines += [f"#EXTINF:{self.durations[i]:.6f},", f"seg{i}.ts"]
        if ready == len(self.durations):
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


class _HlsHandler(_Handler):
    def do_GET(self) -> None:  # http.server calls it by this name
        srv: HlsServer = self.owner
        srv.count()
        path = self.path.split("?")[0].lstrip("/")
        if path == "live.m3u8":
            body, kind = srv.playlist().encode(), "application/vnd.apple.mpegurl"
        elif re.fullmatch(r"seg\d+\.ts", path) and (srv.folder / path).is_file():
            body, kind = (srv.folder / path).read_bytes(), "video/mp2t"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
