"""One face detector for every camera of `kuzet run`: the cameras send it frames, it runs them in batches.

With `run.shared_detector: true`, `kuzet run` starts one detector process beside the camera workers (as Frigate
does). Each worker keeps its own decoding, motion gate, search (YuNet), tracking and decisions, and sends the frames
that need CenterFace, already shrunk to the detector's input scale (the full pass's, or a step of it for frames that
follow large tracked faces), to that process over a Unix socket.
The detector takes every frame that arrived while it was busy and runs them as one model call per input size, so a
GPU (or the cores) serves many streams with one model instance, and the cameras' frames are batched without
waiting for each other.

The socket lives in a private temporary folder (owner-only) and every connection must prove the run's random key
(`multiprocessing.connection`'s HMAC challenge, which must be over within a few seconds), so another local user
cannot reach it and a process of the same user cannot use it without the key, nor hold it up by connecting and
staying silent. Nothing on the wire is unpickled: a frame is a fixed header and its pixels, an answer a count and the
faces' numbers; a malformed frame is refused and answered with the reason, and a message larger than any frame can be
ends its connection unread.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing import AuthenticationError, parent_process
from multiprocessing.connection import Client, Connection, Listener, answer_challenge, deliver_challenge, wait
from typing import TYPE_CHECKING, Any

import numpy as np

from kuzet.config.models import CenterFaceConfig
from kuzet.core.accel import share_cores
from kuzet.core.errors import ModelError
from kuzet.core.types import Detections, Image
from kuzet.detect.face.centerface import CenterFaceDetector, padded

if TYPE_CHECKING:
    from kuzet.runtime.worker import MessageQueue, StopFlag

log = logging.getLogger("kuzet.run")

_FRAME = struct.Struct("<4sHH")
"""A frame sent to the detector: b"KZF1", height, width, then height x width x 3 bytes (RGB)."""
_FACES = struct.Struct("<4sI")
"""An answer: b"KZD1", the number of faces, then 15 float32 per face (box, score, five landmarks)."""
_ERROR = b"KZE1"
"""An answer that refuses the frame: b"KZE1" and the reason (UTF-8)."""
FACE_FLOATS = 15
REPLY_TIMEOUT_S = 10.0
"""How long a camera waits for its frame's faces before giving up on the detector (and reconnecting)."""
CONNECT_WAIT_S = 15.0
"""How long a camera waits for the detector's socket to appear (it starts beside the workers)."""
HEARTBEAT_S = 1.0
HANDSHAKE_S = 5.0
"""How long either side of a new connection may take to prove the run's key."""
MAX_BATCH = 16
"""The most frames in one model call (a GPU's memory is finite); more waiting frames go in further calls."""


def _prove(conn: Connection, key: bytes, *, serving: bool) -> None:
    """Both sides prove the run's key (the server asks first); past HANDSHAKE_S the socket is shut and it fails.

    Raises:
        AuthenticationError: The other side does not hold the key.
        OSError: It went away, or did not finish in time (EOFError too).

    """
    done = threading.Event()

    def shut() -> None:
        if not done.is_set():
            with contextlib.suppress(OSError, ValueError), socket.socket(fileno=os.dup(conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(HANDSHAKE_S, shut)
    timer.daemon = True
    timer.start()
    try:
        if serving:
            deliver_challenge(conn, key)
            answer_challenge(conn, key)
        else:
            answer_challenge(conn, key)
            deliver_challenge(conn, key)
    finally:
        done.set()
        timer.cancel()


def encode_frame(image: Image) -> bytes:
    """A shrunk frame as the detector's request."""
    h, w = image.shape[:2]
    return _FRAME.pack(b"KZF1", h, w) + np.ascontiguousarray(image, dtype=np.uint8).tobytes()


def decode_frame(data: bytes, *, max_side: int) -> Image:
    """A request's frame (a read-only view of `data`).

    Raises:
        ValueError: Not a frame, a side of 0 or over `max_side`, or the pixels do not match the size.

    """
    if len(data) < _FRAME.size:
        raise ValueError("not a frame: too short")
    magic, h, w = _FRAME.unpack_from(data)
    if magic != b"KZF1":
        raise ValueError("not a frame: unknown header")
    if not (0 < h <= max_side and 0 < w <= max_side):
        raise ValueError(f"a {w}x{h} frame: each side must be 1 to {max_side} pixels (the detector's max_side)")
    if len(data) != _FRAME.size + h * w * 3:
        raise ValueError(f"a {w}x{h} frame needs {h * w * 3} bytes of pixels, got {len(data) - _FRAME.size}")
    return np.frombuffer(data, np.uint8, offset=_FRAME.size).reshape(h, w, 3)


def encode_faces(dets: Detections) -> bytes:
    """The detector's answer for one frame."""
    n = len(dets)
    rows = np.zeros((n, FACE_FLOATS), np.float32)
    if n:
        rows[:, :4] = dets.boxes
        rows[:, 4] = dets.scores
        if dets.landmarks is not None:
            rows[:, 5:] = dets.landmarks.reshape(n, 10)
    return _FACES.pack(b"KZD1", n) + rows.tobytes()


def decode_faces(data: bytes) -> Detections:
    """An answer's faces.

    Raises:
        ModelError: The detector refused the frame (with its reason), or the answer is malformed.

    """
    if data[:4] == _ERROR:
        reason = data[4:].decode("utf-8", "replace")
        raise ModelError(f"the shared detector refused a frame: {reason}", hint="see kuzet run's log")
    if len(data) < _FACES.size or data[:4] != b"KZD1":
        raise ModelError("the shared detector's answer is not one kuzet understands", hint="restart kuzet run")
    (_, n) = _FACES.unpack_from(data)
    if len(data) != _FACES.size + n * FACE_FLOATS * 4:
        raise ModelError("the shared detector's answer was cut short", hint="restart kuzet run")
    if n == 0:
        return Detections.empty()
    rows = np.frombuffer(data, np.float32, offset=_FACES.size).reshape(n, FACE_FLOATS)
    return Detections(boxes=rows[:, :4].copy(), scores=rows[:, 4].copy(), landmarks=rows[:, 5:].reshape(n, 5, 2).copy())


@dataclass(slots=True)
class DetectorStats:
    """What the shared detector did: frames, model calls (a call runs several frames), and cameras connected."""

    frames: int = 0
    calls: int = 0
    largest_batch: int = 0
    clients: int = 0
    refused: int = 0
    """Requests refused as malformed, and connections refused for a wrong key."""


class DetectorServer:
    """Serves a CenterFace detector to the camera workers on a Unix socket, one model call per input size."""

    def __init__(self, detector: CenterFaceDetector | None, address: str, authkey: bytes, *, max_side: int = 0) -> None:
        """Listen on `address` at once; `detector` may be set later, so cameras can connect while the model loads."""
        self.detector = detector
        self.address = address
        self._authkey = authkey
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # left by a detector that was killed
        self.listener = Listener(address, family="AF_UNIX")  # the key is proven per connection, with a deadline
        os.chmod(address, 0o600)
        self.stats = DetectorStats()
        self.clients: list[Connection] = []
        self._new: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._max_side = detector.config.max_side if detector is not None else max_side
        threading.Thread(target=self._accept, name="kuzet-detector-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self.listener.accept()
            except Exception:  # a descriptor limit, or the listener closed
                if self._closed:
                    return
                time.sleep(0.05)
                continue
            if self._closed:
                conn.close()
                return
            threading.Thread(target=self._admit, args=(conn,), name="kuzet-detector-admit", daemon=True).start()

    def _admit(self, conn: Connection) -> None:
        """Take a connection in once it proves the run's key within HANDSHAKE_S (each in its own thread)."""
        try:
            _prove(conn, self._authkey, serving=True)
        except AuthenticationError:
            self.stats.refused += 1
            log.warning("shared detector: refused a connection that did not prove the run's key")
            conn.close()
            return
        except Exception:  # silent past the deadline, gone mid-handshake, or garbled
            conn.close()
            return
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._new.append(conn)

    def adopt(self) -> None:
        """Serve the connections admitted since the last look."""
        with self._lock:
            self.clients += self._new
            self._new.clear()
        self.stats.clients = len(self.clients)

    def serve_once(self, timeout: float) -> int:
        """Wait up to `timeout` s for frames, run every frame that is waiting, answer each; returns how many."""
        self.adopt()
        if not self.clients:
            time.sleep(min(timeout, 0.05))
            return 0
        asks: list[tuple[Connection, Image]] = []
        for conn in wait(self.clients, timeout):
            assert isinstance(conn, Connection)
            try:
                data = conn.recv_bytes(_FRAME.size + self._max_side * self._max_side * 3)
            except (EOFError, OSError):  # the camera went away, or sent more than any frame can be
                self._drop(conn)
                continue
            try:
                asks.append((conn, decode_frame(data, max_side=self._max_side)))
            except ValueError as exc:
                self.stats.refused += 1
                self._send(conn, _ERROR + str(exc).encode())
        for first in range(0, len(asks), MAX_BATCH):
            self._run(asks[first : first + MAX_BATCH])
        return len(asks)

    def _run(self, asks: list[tuple[Connection, Image]]) -> None:
        """Detect a batch and answer each camera; a batch the model fails on is tried again one frame at a time."""
        assert self.detector is not None, "set the detector before serving"
        try:
            found = self.detector.detect_shrunk([image for _, image in asks])
        except Exception as exc:  # onnxruntime's errors (a GPU out of memory): the detector goes on
            if len(asks) > 1:
                log.warning("shared detector: a batch of %d frames failed (%s); one at a time", len(asks), exc)
                for ask in asks:
                    self._run([ask])
                return
            log.exception("shared detector: a frame failed")
            self._send(asks[0][0], _ERROR + f"the model failed ({type(exc).__name__})".encode())
            return
        self.stats.frames += len(asks)
        self.stats.calls += len({padded(*image.shape[:2]) for _, image in asks})
        self.stats.largest_batch = max(self.stats.largest_batch, len(asks))
        for (conn, _), dets in zip(asks, found, strict=True):
            self._send(conn, encode_faces(dets))

    def _send(self, conn: Connection, data: bytes) -> None:
        try:
            conn.send_bytes(data)
        except (OSError, ValueError):
            self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        if conn in self.clients:
            self.clients.remove(conn)
        conn.close()

    def close(self) -> None:
        """Stop accepting, close every connection and remove the socket."""
        with self._lock:
            self._closed = True
            waiting, self._new = self._new, []
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            wake.connect(self.address)  # the accept thread sees `_closed` and ends
        self.listener.close()
        for conn in self.clients + waiting:
            conn.close()
        self.clients.clear()


class SharedCenterFace(CenterFaceDetector):
    """CenterFace as a camera worker sees it under `run.shared_detector`: its full passes run in the detector.

    Shrinking the frame, YuNet's search and turning the faces back into the frame's pixels stay in the worker, so
    the faces are those of the worker's own CenterFace.
    """

    def __init__(self, config: CenterFaceConfig, address: str, authkey: bytes) -> None:
        self.config = config
        self.precision = config.precision
        self._buffer = None
        self._filled = (0, 0)
        self.address = address
        self._authkey = authkey
        self._conn: Connection | None = None

    def _connect(self) -> Connection:
        deadline = time.monotonic() + CONNECT_WAIT_S
        while True:
            try:
                conn = Client(self.address, family="AF_UNIX")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise ModelError(
                        f"the shared detector is not running (no answer on its socket for {CONNECT_WAIT_S:.0f} s)",
                        hint="kuzet run restarts it; see its log",
                    ) from None
                time.sleep(0.1)
        try:
            _prove(conn, self._authkey, serving=False)
        except AuthenticationError:
            conn.close()
            raise ModelError(
                "the shared detector refused this camera's key", hint="restart kuzet run (each run has its own key)"
            ) from None
        except Exception:  # OSError, EOFError: it went away or did not finish the handshake in time
            conn.close()
            raise ModelError(
                "the shared detector did not take the connection", hint="kuzet run restarts it; see its log"
            ) from None
        return conn

    def _detect_small(self, small: Image) -> Detections:
        conn = self._conn = self._conn or self._connect()
        try:
            conn.send_bytes(encode_frame(small))
            if not conn.poll(REPLY_TIMEOUT_S):
                raise TimeoutError
            reply = conn.recv_bytes()
        except (OSError, EOFError) as exc:  # TimeoutError is an OSError
            self.close()
            what = "did not answer" if isinstance(exc, TimeoutError) else "went away"
            raise ModelError(
                f"the shared detector {what}", hint="kuzet run restarts it; the camera reconnects meanwhile"
            ) from None
        return decode_faces(reply)

    def close(self) -> None:
        """Let go of the connection (the next frame connects again)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def detector_main(config_json: str, address: str, authkey: bytes, messages: MessageQueue, stop: StopFlag) -> None:
    """Process entry point: serve the cameras until `stop` is set, SIGTERM arrives or the supervisor dies."""
    quit_now = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: quit_now.set())
    share_cores(1)  # every core for the model, whose threads sleep while they wait (the cameras need them too)
    config = CenterFaceConfig.model_validate_json(config_json)
    server = DetectorServer(None, address, authkey, max_side=config.max_side)  # cameras connect while it loads
    server.detector = CenterFaceDetector(config)
    parent = parent_process()
    sent = 0.0
    try:
        while not (stop.is_set() or quit_now.is_set() or (parent is not None and not parent.is_alive())):
            server.serve_once(0.2)
            if time.monotonic() - sent >= HEARTBEAT_S:
                messages.put(replace(server.stats))
                sent = time.monotonic()
    finally:
        server.close()
        messages.put(replace(server.stats))


class SharedDetector:
    """`kuzet run`'s side of the shared detector: its process, socket and key; restarted when it dies or hangs."""

    def __init__(self, config: CenterFaceConfig, *, hang_timeout_s: float) -> None:
        self.config = config
        self.hang_timeout_s = hang_timeout_s
        self._folder = ""
        self.address = ""
        """The socket (in an owner-only folder made by the first `start`)."""
        self.authkey = os.urandom(32)
        self._ctx: Any = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._queue: Any = None
        self.process: Any = None
        self.stats = DetectorStats()
        self.carried = DetectorStats()
        """Counts of the detector's earlier processes (so totals never go down)."""
        self.restarts = 0
        self._crashes = 0
        """Deaths in a row (reset once a process has run for a minute): what the backoff goes by."""
        self._heard_at = self._started_at = time.monotonic()
        self._restart_at = 0.0

    @property
    def pid(self) -> int:
        """The detector process's id (0 while it is not running)."""
        return int(self.process.pid or 0) if self.process is not None else 0

    def start(self) -> None:
        """Start the detector process (the first start makes the socket's folder, which `stop` removes)."""
        if not self._folder:
            self._folder = tempfile.mkdtemp(prefix="kuzet-detector-")  # owner-only; short (sockets allow 107 bytes)
            self.address = os.path.join(self._folder, "socket")
        self._queue = self._ctx.Queue()
        self.process = self._ctx.Process(
            target=detector_main,
            args=(self.config.model_dump_json(), self.address, self.authkey, self._queue, self._stop),
            name="kuzet-detector",
            daemon=True,  # never keeps kuzet run from exiting
        )
        self.process.start()
        self.stats = DetectorStats()
        self._heard_at = self._started_at = time.monotonic()

    def totals(self) -> DetectorStats:
        """Counts over every process of this run (the largest batch and clients are the current ones')."""
        now, old = self.stats, self.carried
        return DetectorStats(
            frames=now.frames + old.frames,
            calls=now.calls + old.calls,
            largest_batch=max(now.largest_batch, old.largest_batch),
            clients=now.clients,
            refused=now.refused + old.refused,
        )

    def _read(self) -> None:
        while True:
            try:
                msg = self._queue.get_nowait()
            except Exception:  # empty, or a process killed mid-message
                return
            if isinstance(msg, DetectorStats):
                self.stats = msg
                self._heard_at = time.monotonic()

    def watch(self) -> str:
        """Read its counts; restart it (with backoff) when it died or hung. Returns what happened, or ''."""
        if self.process is None:
            if time.monotonic() >= self._restart_at:
                self.start()
                return "shared detector restarted"
            return ""
        self._read()
        now = time.monotonic()
        if self.process.is_alive():
            if now - self._heard_at <= self.hang_timeout_s or now - self._started_at <= self.hang_timeout_s:
                return ""
            self.process.kill()
            self.process.join(5)
            reason = f"hung (silent for {now - self._heard_at:.0f} s) and was killed"
        else:
            self.process.join(0)
            reason = f"exited with code {self.process.exitcode}"
        self.carried = self.totals()
        self.stats = DetectorStats()
        self.restarts += 1
        self._crashes = 1 if now - self._started_at > 60.0 else self._crashes + 1
        self._restart_at = now + min(30.0, 0.5 * 2 ** min(self._crashes - 1, 10))
        self.process = None
        return f"shared detector {reason}; restarting"

    def stop(self) -> None:
        """Stop the process (after the cameras) and remove the socket's folder."""
        self._stop.set()
        if self.process is not None:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
            self._read()
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
