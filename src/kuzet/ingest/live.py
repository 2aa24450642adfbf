"""Live streams: decoding in a background thread into a small queue where the newest frame wins.

A live camera does not wait for analysis. When analysis falls behind, the oldest waiting frame is dropped (and
counted), so what is analysed is always recent. The same thread can copy the camera's packets into recording
segments without re-encoding them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from kuzet.core.errors import InputError
from kuzet.core.types import Frame
from kuzet.ingest.sources import FrameSampler, redact_url, stream_open_error


class PacketSink(Protocol):
    """Receives every compressed video packet of a stream (a recorder)."""

    def write(self, packet: Any) -> None:
        """One demuxed packet, in stream order."""
        ...

    def close(self) -> None:
        """The stream ended: finish what is open."""
        ...


@dataclass(slots=True)
class StreamCounters:
    """What one connection has done so far."""

    decoded: int = 0
    """Frames decoded (every frame of the stream: H.264 cannot skip them)."""
    sampled: int = 0
    """Frames kept by the sampler and queued for analysis."""
    dropped: int = 0
    """Queued frames dropped because analysis was behind (the oldest goes first)."""


class LiveStream:
    """One connection to a network camera.

    Args:
        url: The stream URL, credentials included (never logged: `name` is the URL without them).
        fps: Frames queued per second of stream time (the rest are decoded and discarded).
        queue_size: Frames waiting for analysis; when full, the oldest is dropped.
        open_timeout_s: Seconds to wait for the camera to answer.
        read_timeout_s: Seconds a single read may block before FFmpeg gives up (a backstop: callers detect stalls
            sooner from `last_frame_at`).
        max_pixels: Larger frames are refused.
        sink: Receives every video packet (recording), or None.
        make_sink: Called once the stream is open to build `sink` for its video stream (recording needs it).

    Raises:
        InputError: The camera cannot be reached or has no video.

    """

    def __init__(
        self,
        url: str,
        *,
        fps: float | None,
        queue_size: int,
        open_timeout_s: float,
        read_timeout_s: float,
        max_pixels: int,
        make_sink: Callable[[Any], PacketSink] | None = None,
    ) -> None:
        import av

        self.name = redact_url(url)
        self._url = url
        self._fps = fps
        self._max_pixels = max_pixels
        options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp://", "rtsps://")) else {}
        began = time.monotonic()
        try:
            self._container = av.open(url, options=options, timeout=(open_timeout_s, read_timeout_s))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            waited = time.monotonic() - began >= 0.9 * open_timeout_s
            raise stream_open_error(exc, url, timeout_s=open_timeout_s if waited else None) from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.name} has no video stream", hint="point the camera URL at a video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._sink = make_sink(self._stream) if make_sink is not None else None
        self._frames: deque[Frame] = deque(maxlen=queue_size)
        self._ready = threading.Condition()
        self._failure: InputError | None = None
        self._stop = threading.Event()
        self.counters = StreamCounters()
        self.opened_at = time.monotonic()
        self.last_frame_at = self.opened_at
        """Monotonic time of the newest frame queued for analysis (stall detection)."""
        self._thread = threading.Thread(target=self._decode, name=f"decode:{self.name}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the decoding thread still runs (it may be blocked on a dead camera until its read timeout)."""
        return self._thread.is_alive()

    @property
    def queue_depth(self) -> int:
        """Frames waiting for analysis."""
        return len(self._frames)

    def _push(self, frame: Frame) -> None:
        with self._ready:
            if len(self._frames) == self._frames.maxlen:
                self.counters.dropped += 1  # deque drops the oldest on append
            self._frames.append(frame)
            self.counters.sampled += 1
            self.last_frame_at = time.monotonic()
            self._ready.notify()

    def _fail(self, error: InputError) -> None:
        with self._ready:
            self._failure = error
            self._ready.notify_all()

    def _decode(self) -> None:
        import av

        sampler = FrameSampler(self._fps)
        try:
            for packet in self._container.demux(self._stream):
                if self._stop.is_set():
                    return
                if packet.dts is None:
                    continue  # a flush packet at the end of the stream
                vframes = packet.decode()
                if self._sink is not None:
                    self._sink.write(packet)  # after decoding: muxing re-targets the packet at the output stream
                for vframe in vframes:
                    self.counters.decoded += 1
                    if vframe.time is None or not sampler.keep(float(vframe.time)):
                        continue
                    if vframe.width * vframe.height > self._max_pixels:
                        raise InputError(
                            f"{self.name} sends {vframe.width}x{vframe.height} frames, over the pixel cap",
                            hint="raise ingest.max_pixels in the config or pick the camera's smaller stream",
                        )
                    image = np.asarray(vframe.to_ndarray(format="rgb24"), dtype=np.uint8)
                    self._push(
                        Frame(image=image, pts=float(vframe.time), index=self.counters.decoded - 1, origin=self.name)
                    )
            self._fail(InputError(f"{self.name}: the stream ended", hint="the camera closed the connection"))
        except InputError as exc:
            self._fail(exc)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if not self._stop.is_set():
                reason = str(exc).replace(self._url, self.name)
                self._fail(InputError(f"{self.name}: reading failed ({reason})", hint="the connection dropped"))
        finally:
            if self._sink is not None:
                self._sink.close()
            self._container.close()  # this thread owns the connection: closed here, even after a late timeout

    def get(self, timeout: float) -> Frame | None:
        """The oldest waiting frame, or None if none came within `timeout` seconds.

        Raises:
            InputError: The stream ended or failed (after every waiting frame was taken).

        """
        with self._ready:
            if not self._frames and self._failure is None:
                self._ready.wait(timeout)
            if self._frames:
                return self._frames.popleft()
            if self._failure is not None:
                raise self._failure
            return None

    def close(self) -> None:
        """Stop decoding and close the connection (a read blocked on a dead camera ends at its read timeout)."""
        self._stop.set()
        self._thread.join(timeout=2.0)


@dataclass(frozen=True, slots=True)
class Segment:
    """One closed recording segment."""

    path: Path
    start_pts: float
    end_pts: float
    started_at: float
    """Wall-clock time (Unix seconds) of its first packet."""


class SegmentRecorder:
    """Copies a stream's packets into MP4 segments cut at key frames, without decoding or re-encoding them.

    Args:
        stream: The input video stream (its codec parameters are copied).
        directory: Where segments are written while open.
        segment_s: Cut at the first key frame after this many seconds.
        on_segment: Called with each closed segment (from the decoding thread).

    """

    def __init__(
        self, stream: Any, directory: Path, *, segment_s: float, on_segment: Callable[[Segment], None]
    ) -> None:
        self._template = stream
        self._dir = directory
        self._segment_s = segment_s
        self._on_segment = on_segment
        self._out: Any = None
        self._out_stream: Any = None
        self._path: Path | None = None
        self._start = 0.0
        self._last = 0.0
        self._wall = 0.0
        self._count = 0
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # unencrypted segments wait here: owner-only, whatever the umask

    def write(self, packet: Any) -> None:
        """Mux one packet, starting a new segment at a key frame when the current one is long enough."""
        import av

        if packet.pts is None:
            return
        t = float(packet.pts * packet.time_base)
        if self._out is None or (packet.is_keyframe and t - self._start >= self._segment_s):
            self._finish()
            if not packet.is_keyframe:
                return  # a segment must start at a key frame to be playable
            self._count += 1
            self._wall = time.time()
            self._path = self._dir / f"{int(self._wall * 1000)}-{self._count}.mp4"
            self._out = av.open(str(self._path), "w", format="mp4")
            self._out_stream = self._out.add_stream_from_template(self._template)
            self._start = t
        self._last = max(self._last, t)
        packet.stream = self._out_stream
        with contextlib.suppress(av.error.FFmpegError, ValueError):
            self._out.mux(packet)  # one bad timestamp from the camera loses one packet, not the segment

    def _finish(self) -> None:
        import av

        if self._out is None or self._path is None:
            return
        try:
            self._out.close()
        except (av.error.FFmpegError, OSError, ValueError):
            self._path.unlink(missing_ok=True)
            self._out = None
            return
        self._out = None
        self._on_segment(Segment(self._path, self._start, self._last, self._wall))

    def close(self) -> None:
        """Close the open segment."""
        self._finish()
