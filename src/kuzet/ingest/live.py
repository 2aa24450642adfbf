"""Live streams: decoding in a background thread into a small queue where the newest frame wins.

A live camera does not wait for analysis. When analysis falls behind, the oldest waiting frame is dropped (and
counted), so what is analysed is always recent. The same thread can copy the camera's packets into recording
segments without re-encoding them.

Cameras differ in how they connect and how they keep time:

- RTSP runs over TCP, UDP or HTTP tunnelling (`transport`); `auto` tries TCP, then UDP when the camera refuses TCP.
- Some sources' own clocks cannot be trusted: FFmpeg stamps an MJPEG-over-HTTP camera at an assumed 25 frames/s
  whatever it sends, and some HLS streams restart or jump their clocks. `clock="wall"` stamps frames by this
  machine's clock instead (`WallClock`).
- HLS arrives in bursts, a segment at a time: a burst is sampled by its frames' times and waits for analysis
  (the decoder pauses) instead of overflowing the small queue, which is meant for cameras that run ahead.
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

from kuzet.config.vision import DecodeConfig
from kuzet.core.errors import InputError
from kuzet.core.types import Frame, Image
from kuzet.ingest.decode import choose_hardware, tune_decoder
from kuzet.ingest.sources import Clock, FrameSampler, Transport, error_words, open_live, redact_url


class PacketSink(Protocol):
    """Receives every compressed video packet of a stream (a recorder)."""

    def write(self, packet: Any, at: float | None = None) -> None:
        """One demuxed packet, in stream order; `at`: its time on the frames' clock when that is not the stream's."""
        ...

    def close(self) -> None:
        """The stream ended: finish what is open."""
        ...


WALL_FORMATS = frozenset({"mpjpeg", "hls", "applehttp"})
"""Demuxers whose frame times `clock: auto` does not trust: MJPEG over HTTP (no times at all) and HLS."""
BURSTY_FORMATS = frozenset({"hls", "applehttp"})
"""Demuxers that deliver a segment of frames at once."""


class WallClock:
    """Frame times from this machine's clock, in seconds since the connection opened, for untrustworthy streams.

    A steady source (MJPEG over HTTP) is stamped when each frame arrives. A bursty one (HLS) cannot be: a segment's
    frames arrive within a blink, so they keep the spacing of their own times, anchored to the clock at the first
    frame and anchored again whenever the stream's clock jumps, runs backwards or drifts `resync_s` away.

    Args:
        opened_at: Monotonic time the connection opened (time zero).
        bursty: Whether frames arrive in bursts (HLS).
        resync_s: Largest drift between the anchored times and arrival allowed before anchoring again (seconds;
            more than the stream's buffering: HLS starts up to three segments behind the live edge).

    """

    def __init__(self, opened_at: float, *, bursty: bool, resync_s: float = 30.0) -> None:
        self._zero = opened_at
        self._bursty = bursty
        self._resync_s = resync_s
        self._anchor: tuple[float, float] | None = None
        self._last = -1.0

    def stamp(self, pts: float | None, arrived: float) -> float:
        """The time of a frame whose own time is `pts` (seconds, None: unknown), arriving at monotonic `arrived`."""
        now = arrived - self._zero
        if not self._bursty or pts is None:
            t = now
        else:
            if self._anchor is not None:
                t = self._anchor[1] + pts - self._anchor[0]
                if t < self._last or abs(t - now) > self._resync_s:
                    self._anchor = None
            if self._anchor is None:
                self._anchor = (pts, max(now, self._last))
            t = self._anchor[1] + pts - self._anchor[0]
        self._last = max(self._last, t)
        return t


class PacketRing:
    """The last seconds of a stream's compressed packets, decoded only when a picture of some moment is wanted.

    A camera's main stream is recorded, not analysed: decoding all of it to have a sharp picture ready for the
    rare snapshot would cost a continuous share of a core (1080p H.264 at 25 frames/s: ~2.6 ms a frame, ~7% of a
    core) for pictures that are almost never asked for. Holding the packets costs memory only (a 4 Mbit/s stream:
    ~15 MB for 30 s), and a picture costs the decoding from the key frame before it (at most one GOP, ~50 ms to
    ~150 ms at 1080p), paid per snapshot.

    Args:
        stream: The input video stream (its codec and extradata decode the packets).
        keep_s: Seconds of packets held (from the key frame that starts them).

    """

    def __init__(self, stream: Any, *, keep_s: float) -> None:
        self._codec = stream.codec_context.name
        self._extradata = stream.codec_context.extradata
        self._time_base = stream.time_base
        self._keep_s = keep_s
        self._lock = threading.Lock()
        self._packets: deque[tuple[float, int, bytes, bool]] = deque()
        """(seconds, pts in the stream's time base, data, key frame), in stream order."""

    def add(self, packet: Any) -> None:
        """Hold one demuxed packet (copied: muxing it into a recording changes it afterwards)."""
        if packet.pts is None:
            return
        item = (float(packet.pts * packet.time_base), int(packet.pts), bytes(packet), bool(packet.is_keyframe))
        with self._lock:
            self._packets.append(item)
            newest = item[0]
            # drop whole GOPs that ended before the window: the oldest packet left is always a key frame
            while True:
                keys = [i for i, p in enumerate(self._packets) if p[3]]
                if len(keys) < 2 or self._packets[keys[1]][0] > newest - self._keep_s:
                    break
                for _ in range(keys[1]):
                    self._packets.popleft()

    def span(self) -> tuple[float, float] | None:
        """Stream times (seconds) of the oldest and newest packets held."""
        with self._lock:
            if not self._packets:
                return None
            return self._packets[0][0], self._packets[-1][0]

    def picture_at(self, t: float, *, tolerance_s: float = 0.25) -> tuple[Image, float] | None:
        """The held frame nearest stream time `t`: RGB uint8, shape (H, W, 3), and its time (seconds).

        None when no held frame lies within `tolerance_s` of `t` or the packets cannot be decoded.
        """
        import av

        with self._lock:
            packets = list(self._packets)
        start = next((i for i in range(len(packets) - 1, -1, -1) if packets[i][3] and packets[i][0] <= t), None)
        if start is None:
            return None
        try:
            ctx = av.CodecContext.create(self._codec, "r")
            if self._extradata:
                ctx.extradata = self._extradata
            best: tuple[float, Any] | None = None
            for _, pts, data, _ in [*packets[start:], (0.0, 0, b"", False)]:
                packet = None
                if data:
                    packet = av.Packet(data)
                    packet.pts = pts
                    packet.time_base = self._time_base
                for vframe in ctx.decode(packet):  # None: flush what is held
                    ft = float(vframe.pts * self._time_base) if vframe.pts is not None else None
                    if ft is not None and (best is None or abs(ft - t) < abs(best[0] - t)):
                        best = (ft, vframe)
                if best is not None and best[0] >= t + tolerance_s:
                    break  # later frames only get further away
        except (av.error.FFmpegError, ValueError):
            return None
        if best is None or abs(best[0] - t) > tolerance_s:
            return None
        return np.asarray(best[1].to_ndarray(format="rgb24"), dtype=np.uint8), best[0]


@dataclass(slots=True)
class StreamCounters:
    """What one connection has done so far."""

    packets: int = 0
    """Video packets read: the frames the stream held (recordings get every one)."""
    decoded: int = 0
    """Frames decoded (all of them, unless the decoder skips non-reference frames: `ingest.decode.NonRefSkip`)."""
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
        make_sink: Called once the stream is open to build a sink for its video stream (recording needs it).
        transport: RTSP transport: `tcp`, `udp`, `http` (tunnelled through HTTP) or `auto` (TCP, then UDP).
        clock: Frame times from the stream (`stream`), this machine's clock (`wall`) or, with `auto`, the wall
            clock for MJPEG over HTTP and HLS, whose own times cannot be trusted.
        decode: Hardware decoding, decoder threads and skipping of non-reference frames.
        analyse: False for a stream that is only recorded (a camera's main stream beside its analysed
            sub-stream): packets go to the sink and `ring`, nothing is decoded or queued.
        keep_s: Seconds of compressed packets held in `ring` for pictures decoded on demand (0: none).

    Raises:
        InputError: The camera cannot be reached or has no video.
        ConfigError: `decode` names a hardware decoder this machine lacks.

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
        transport: Transport = "auto",
        clock: Clock = "auto",
        decode: DecodeConfig | None = None,
        analyse: bool = True,
        keep_s: float = 0.0,
    ) -> None:
        self.name = redact_url(url)
        self._analyse = analyse
        self._url = url
        self._fps = fps
        self._max_pixels = max_pixels
        decode = decode or DecodeConfig()
        hardware = choose_hardware(decode)  # before connecting: a missing device is not the camera's fault
        self._container, self.transport = open_live(
            url, transport=transport, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s, hardware=hardware
        )
        """The RTSP transport that connected (None: not RTSP)."""
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.name} has no video stream", hint="point the camera URL at a video stream")
        self._stream = self._container.streams.video[0]
        self._decoder, self._skip = tune_decoder(self._stream, decode, fps=fps, hardware=hardware)
        demuxer = set(self._container.format.name.split(","))
        self.bursty = bool(demuxer & BURSTY_FORMATS)
        """Whether frames arrive a segment at a time (HLS): then the decoder waits for room instead of dropping."""
        untrusted = bool(demuxer & WALL_FORMATS) or self._stream.codec_context.name == "mjpeg"
        self.clock: str = "wall" if clock == "wall" or (clock == "auto" and untrusted) else "stream"
        """Where frame times come from: `stream` or `wall`."""
        self.opened_at = time.monotonic()
        self._sink = make_sink(self._stream) if make_sink is not None else None
        self.ring = PacketRing(self._stream, keep_s=keep_s) if keep_s > 0 else None
        """The last `keep_s` seconds of packets, for pictures decoded on demand (None when not kept)."""
        self.size: tuple[int, int] | None = None
        """Width and height of the frames (None until the first is seen; read from the codec when not decoding)."""
        self.offset: float | None = self.opened_at if self.clock == "wall" else None
        """Monotonic time minus stream time: maps this stream's times onto another connection's (a camera's sub- and
        main streams are two RTSP sessions with clocks of their own). On the stream's clock it is the lag of the
        least delayed packet, taken as it is read, before any decoding, the same way on every stream of a camera
        (a lag taken after decoding is later by the decoding time, on the analysed stream only). On the wall clock
        it is the moment the connection opened, time zero of the frames' times."""
        self._frames: deque[Frame] = deque(maxlen=None if self.bursty else queue_size)
        self._room = queue_size
        self._ready = threading.Condition()
        self._failure: InputError | None = None
        self._stop = threading.Event()
        self.counters = StreamCounters()
        self.last_frame_at = self.opened_at
        """Monotonic time of the newest frame queued for analysis (stall detection)."""
        role = "decode" if self._analyse else "record"  # a main stream's thread only demuxes and records
        self._thread = threading.Thread(target=self._decode, name=f"{role}:{self.name}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the decoding thread still runs (it may be blocked on a dead camera until its read timeout)."""
        return self._thread.is_alive()

    @property
    def decoder(self) -> str:
        """How the stream is decoded, in words (`h264 software, 2 slice threads; non-reference frames skipped (58%)`).

        Skipped: the packets read that gave no frame (a few frames inside the decoder count too, for a moment).
        """
        c = self.counters
        if not self._analyse:
            return f"{self._stream.codec_context.name} not decoded (recorded as it arrives)"
        return self._decoder.describe(self._skip, skipped=max(0, c.packets - c.decoded), frames=c.packets)

    @property
    def queue_depth(self) -> int:
        """Frames waiting for analysis."""
        return len(self._frames)

    def _push(self, frame: Frame) -> None:
        with self._ready:
            while self.bursty and len(self._frames) >= self._room and not self._stop.is_set():
                # A burst waits for analysis: the next one is a segment away, and HLS buffers what is not read.
                self._ready.wait(0.1)
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

        sampler = FrameSampler(self._fps, slack=0.3 if self.clock == "wall" else 0.0)
        wall = WallClock(self.opened_at, bursty=self.bursty) if self.clock == "wall" else None
        try:
            for packet in self._container.demux(self._stream):
                if self._stop.is_set():
                    return
                if packet.dts is None:
                    continue  # a flush packet at the end of the stream
                self.counters.packets += 1
                if wall is None and packet.pts is not None:
                    self._arrived(float(packet.pts * packet.time_base), time.monotonic())
                if not self._analyse:
                    self._record_only(packet)
                    continue
                vframes = packet.decode()
                if self._sink is not None:
                    at = None
                    if wall is not None:
                        own = float(packet.pts * packet.time_base) if packet.pts is not None else None
                        at = wall.stamp(own, time.monotonic())
                    self._sink.write(packet, at)  # after decoding: muxing re-targets the packet at the output stream
                for vframe in vframes:
                    self.counters.decoded += 1
                    own = float(vframe.time) if vframe.time is not None else None
                    self._skip.seen(own)  # the stream's own times: the gaps skipping leaves are in them
                    t = wall.stamp(own, time.monotonic()) if wall is not None else own
                    if t is None or not sampler.keep(t):
                        continue
                    if vframe.width * vframe.height > self._max_pixels:
                        raise InputError(
                            f"{self.name} sends {vframe.width}x{vframe.height} frames, over the pixel cap",
                            hint="raise ingest.max_pixels in the config or pick the camera's smaller stream",
                        )
                    image = np.asarray(vframe.to_ndarray(format="rgb24"), dtype=np.uint8)
                    self.size = (image.shape[1], image.shape[0])
                    self._push(Frame(image=image, pts=t, index=self.counters.decoded - 1, origin=self.name))
            self._fail(InputError(f"{self.name}: the stream ended", hint="the camera closed the connection"))
        except InputError as exc:
            self._fail(exc)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if not self._stop.is_set():
                reason = error_words(exc).replace(self._url, self.name)
                over = f" over {self.transport}" if self.transport else ""
                self._fail(InputError(f"{self.name}: reading{over} failed ({reason})", hint="the connection dropped"))
        finally:
            if self._sink is not None:
                self._sink.close()
            self._container.close()  # this thread owns the connection: closed here, even after a late timeout

    def _arrived(self, t: float, at: float) -> None:
        """A packet of stream time `t` was read at monotonic time `at`: the least delayed one sets `offset`."""
        lag = at - t
        if self.offset is None or lag < self.offset:
            self.offset = lag

    def _record_only(self, packet: Any) -> None:
        """A packet of a stream that is recorded, not analysed: held, recorded on the monotonic clock, never decoded."""
        if packet.pts is None:
            return
        cc = self._stream.codec_context
        self.size = (cc.width, cc.height)
        if self.ring is not None:
            self.ring.add(packet)
        if self._sink is not None:
            assert self.offset is not None
            self._sink.write(packet, float(packet.pts * packet.time_base) + self.offset)
        self.last_frame_at = time.monotonic()

    def get(self, timeout: float) -> Frame | None:
        """The oldest waiting frame, or None if none came within `timeout` seconds.

        Raises:
            InputError: The stream ended or failed (after every waiting frame was taken).

        """
        with self._ready:
            if not self._frames and self._failure is None:
                self._ready.wait(timeout)
            if self._frames:
                frame = self._frames.popleft()
                self._ready.notify_all()  # a waiting burst may go on
                return frame
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

    def write(self, packet: Any, at: float | None = None) -> None:
        """Mux one packet, starting a new segment at a key frame when the current one is long enough.

        `at`: the packet's time on the clock the analysed frames use (the wall clock), else its own time.
        """
        import av

        if packet.pts is None:
            return
        t = at if at is not None else float(packet.pts * packet.time_base)
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
