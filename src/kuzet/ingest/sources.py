"""Frame sources: a video file, a still image, a folder of images, or an rtsp:// / http:// stream.

Video is decoded with PyAV (FFmpeg) in a background thread that fills a bounded queue, so decoding overlaps
analysis. Timestamps come from the stream's presentation times, never from the wall clock.
"""

from __future__ import annotations

import errno
import math
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from kuzet.config.models import IngestConfig
from kuzet.core.errors import InputError, StreamAuthError
from kuzet.core.types import Frame
from kuzet.ingest.decode import choose_hardware, hwaccel, tune_decoder
from kuzet.ingest.images import IMAGE_SUFFIXES, is_still_image, load_image

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")


class FrameSource(Protocol):
    """Anything that yields frames; use it as a context manager so that decoding stops cleanly."""

    name: str
    expected_frames: int | None

    def __iter__(self) -> Iterator[Frame]:
        """Frames in stream order."""
        ...

    def __enter__(self) -> Self:
        """Start decoding."""
        ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop decoding and release the source."""
        ...


REDACTED = "***"


def _secretish(segment: str) -> bool:
    """A path segment that looks like a token rather than a name: long, or mixing letters and digits at length."""
    has_alpha, has_digit = any(c.isalpha() for c in segment), any(c.isdigit() for c in segment)
    return len(segment) >= 24 or (len(segment) >= 12 and has_alpha and has_digit)


def redact_url(url: str) -> str:
    """The URL safe to log, show or store: no user name or password, no query values, no token-like path parts.

    Cameras and services put secrets in all three places (`rtsp://u:p@host/...`, `?token=...`,
    `/live/3f9a0c...`); the shape of the URL stays readable (`rtsp://10.0.0.5/Streaming/Channels/101?token=***`).
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url  # a file path
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    path = "/".join(REDACTED if _secretish(seg) else seg for seg in parts.path.split("/"))
    query = "&".join(
        f"{kv.partition('=')[0]}={REDACTED}" if "=" in kv else REDACTED for kv in parts.query.split("&") if kv
    )
    return urlunsplit((parts.scheme, host, path, query, ""))


def endpoint(url: str) -> str:
    """Only the scheme, host and port of a URL: what may be shown of a webhook (its path is often its key)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused (nothing listens on that port)",
    errno.ECONNRESET: "the camera reset the connection",
    errno.ETIMEDOUT: "no answer in time",
    errno.EHOSTUNREACH: "the camera's address cannot be reached",
    errno.ENETUNREACH: "the camera's network cannot be reached",
    errno.EPROTONOSUPPORT: "the camera does not offer this transport",
    errno.EIO: "the connection failed or broke (an unknown host name does this too)",
    errno.EPIPE: "the connection broke",
    errno.EACCES: "access denied",
    errno.EPERM: "not permitted",
    errno.ENOENT: "no such file or stream",
    errno.EINVAL: "the camera's answer or the URL is invalid",
    errno.ENOMEM: "out of memory",
}
_FFMPEG_NUMBERS = re.compile(r"\[Errno -?\d+\]\s*|\s*\(?(error|errno|code)\s*-?\d{4,}\)?", re.IGNORECASE)


def is_auth_failure(exc: BaseException) -> bool:
    """Whether the camera refused the credentials (HTTP or RTSP 401/403: FFmpeg maps both protocols alike)."""
    import av

    return isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError)


def error_words(exc: BaseException) -> str:
    """What an FFmpeg or socket error means, in plain words: never FFmpeg's error numbers (`[Errno 825242872]`).

    HTTP and RTSP status codes are kept (a camera's manual speaks of 401, not of "authorization failed").
    """
    import av

    words: list[tuple[type[BaseException], str]] = [
        (av.error.HTTPUnauthorizedError, "wrong credentials: the camera refused the user name or password (401)"),
        (av.error.HTTPForbiddenError, "wrong credentials: the camera denied access to this user (403)"),
        (av.error.HTTPNotFoundError, "the camera has no stream at that path (404)"),
        (av.error.HTTPBadRequestError, "the camera rejected the request (400)"),
        (
            av.error.HTTPOtherClientError,
            "the camera refused the request (a 4xx answer, e.g. 461: transport not offered)",
        ),
        (av.error.HTTPServerError, "the camera failed to answer (a 5xx server error)"),
        (av.error.InvalidDataError, "what the camera sent is not a stream FFmpeg can read"),
        (av.error.EOFError, "the stream ended"),
        (av.error.ExitError, "no answer in time"),
        (av.error.HTTPTooManyRequestsError, "the camera asks for fewer connections (429)"),
        (av.error.DemuxerNotFoundError, "FFmpeg cannot read this stream's format"),
        (av.error.ProtocolNotFoundError, "FFmpeg does not speak this URL's protocol"),
    ]
    for cls, text in words:
        if isinstance(exc, cls):
            return text
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number in _ERRNO_WORDS:
        return _ERRNO_WORDS[number]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = getattr(exc, "strerror", None) or str(exc)
    return _FFMPEG_NUMBERS.sub("", str(text)).strip().rstrip(":") or type(exc).__name__


def stream_open_error(
    exc: BaseException, url: str, *, timeout_s: float | None = None, transport: str | None = None
) -> InputError:
    """The error for a stream that could not be opened, in plain words, without the credentials FFmpeg repeats.

    `timeout_s`: the open timeout, when the attempt took that long (the camera never answered). `transport`: the
    RTSP transport tried (`tcp`, `udp`, `http`), named in the message. A refusal of the credentials is a
    `StreamAuthError`.
    """
    name = redact_url(url)
    reason = f"no answer within {timeout_s:g} s" if timeout_s is not None else error_words(exc).replace(url, name)
    over = f"over {transport}: " if transport else ""
    if is_auth_failure(exc):
        return StreamAuthError(
            f"cannot open stream {name}: {over}{reason}",
            hint="check the camera's username and password (env:/secret:) and that the account is not locked",
        )
    return InputError(
        f"cannot open stream {name}: {over}{reason}",
        hint="check that the camera is reachable and the URL, port and credentials are right",
    )


RTSP_SCHEMES = ("rtsp://", "rtsps://")
Transport = Literal["tcp", "udp", "http", "auto"]
Clock = Literal["stream", "wall", "auto"]
"""Where frame times come from (see `ingest.live.WallClock`)."""


def open_live(
    url: str, *, transport: Transport, open_timeout_s: float, read_timeout_s: float, hardware: str | None = None
) -> tuple[Any, str | None]:
    """Open a network stream, trying RTSP transports in order; returns the container and the transport used.

    `hardware`: the hardware decoder to attach (`ingest.decode.choose_hardware`), None for software.

    `auto` tries TCP (every camera's firewall lets it through), then UDP when TCP failed for a reason UDP may not
    share; a refusal of the credentials, a missing path or a camera that never answered is not tried again (a second
    wrong password brings an account lockout nearer).

    Raises:
        InputError: Every transport failed; the message names each one and why, in plain words.
        StreamAuthError: The camera refused the credentials.

    """
    import av

    if not url.startswith(RTSP_SCHEMES):
        tries: list[str | None] = [None]
    elif transport == "auto":
        tries = ["tcp", "udp"]
    else:
        tries = [transport]
    failures: list[str] = []
    last: InputError | None = None
    for used in tries:
        options = {"rtsp_transport": used} if used else {}
        began = time.monotonic()
        try:
            container = av.open(
                url, options=options, timeout=(open_timeout_s, read_timeout_s), hwaccel=hwaccel(hardware)
            )
            return container, used
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            waited = time.monotonic() - began >= 0.9 * open_timeout_s
            last = stream_open_error(exc, url, timeout_s=open_timeout_s if waited else None, transport=used)
            failures.append(last.message.split(": ", 1)[1])
            if waited or isinstance(last, StreamAuthError) or _not_a_transport_matter(exc):
                break
    assert last is not None
    if len(failures) > 1:  # "cannot open stream NAME over tcp: ...; over udp: ..."
        last.message = f"cannot open stream {redact_url(url)}: " + "; ".join(failures)
        last.args = (last.message,)
    raise last


def _not_a_transport_matter(exc: BaseException) -> bool:
    """Failures another transport cannot mend: nothing listens, or the path is wrong."""
    import av

    return isinstance(exc, av.error.HTTPNotFoundError | av.error.ConnectionRefusedError)


class FrameSampler:
    """Keeps about `fps` frames per second of stream time; None keeps every frame.

    `slack`: share of a period a frame may come early and still be kept, for times taken from arrivals (a 10
    frames/s camera's frames arrive 0.1 s apart give or take the network's jitter: without slack every early one
    would be skipped).
    """

    def __init__(self, fps: float | None, *, slack: float = 0.0) -> None:
        self._period = 1.0 / fps if fps else 0.0
        self._early = max(1e-6, slack * self._period)
        self._next: float | None = None

    def keep(self, pts: float) -> bool:
        """Whether the frame at `pts` seconds is analysed."""
        if self._period == 0.0:
            return True
        if self._next is not None and pts < self._next - self._period - 1.0:
            self._next = None  # the stream's clock jumped back (a camera restarted it): start the grid again
        if self._next is None or pts >= self._next - self._early:
            # Stay on the grid, but jump ahead after a gap in the stream.
            base = pts if self._next is None or pts - self._next > self._period else self._next
            self._next = base + self._period
            return True
        return False


class _Base:
    name: str
    expected_frames: int | None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release resources (nothing by default)."""


class StillImageSource(_Base):
    """One still image as one frame."""

    def __init__(self, path: Path, *, config: IngestConfig) -> None:
        self.name = str(path)
        self.expected_frames = 1
        self._path = path
        self._config = config

    def __iter__(self) -> Iterator[Frame]:
        image = load_image(self._path, max_pixels=self._config.max_pixels)
        yield Frame(image=image, pts=0.0, index=0, still=True, origin=self.name)


class ImageFolderSource(_Base):
    """Every image in a folder (sorted by name), each as an independent still frame."""

    def __init__(self, folder: Path, *, config: IngestConfig) -> None:
        self.name = str(folder)
        self._files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise InputError(
                f"folder {folder} holds no images",
                hint=f"put files ending in {', '.join(sorted(IMAGE_SUFFIXES))} there",
            )
        self.expected_frames = len(self._files)
        self._config = config

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self._files):
            image = load_image(path, max_pixels=self._config.max_pixels)
            yield Frame(image=image, pts=float(i), index=i, still=True, origin=str(path))


_END = object()


@dataclass(frozen=True, slots=True)
class _Failure:
    error: InputError


class VideoSource(_Base):
    """A video file or network stream decoded by PyAV in a background thread."""

    def __init__(self, spec: str, *, fps: float | None, config: IngestConfig) -> None:
        import av

        self._is_network = spec.startswith(NETWORK_SCHEMES)
        self.name = redact_url(spec) if self._is_network else spec
        self._spec = spec
        self._config = config
        self._fps = fps
        hardware = choose_hardware(config.decode)
        try:
            if self._is_network:
                self._container, _ = open_live(
                    spec,
                    transport="auto",
                    open_timeout_s=config.open_timeout_s,
                    read_timeout_s=config.open_timeout_s,
                    hardware=hardware,
                )
            else:
                self._container = av.open(spec, hwaccel=hwaccel(hardware))
        except FileNotFoundError:
            raise InputError(f"{self.name} does not exist", hint="check the path") from None
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(
                f"{self.name} cannot be decoded: it is not a video or image, or it is damaged or truncated ({exc})",
                hint="give a video file FFmpeg can decode, an image, a folder of images, or an rtsp:// URL",
            ) from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.name} has no video stream", hint="give a file with video in it")
        self._stream = self._container.streams.video[0]
        self.decoder, self._skip = tune_decoder(self._stream, config.decode, fps=fps, hardware=hardware)
        """How the stream is decoded (threads, hardware); `_skip` skips non-reference frames where harmless."""
        self.expected_frames = self._estimate_frames()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.packets = 0
        """Video packets read so far: the frames the stream held, including those the decoder skipped."""

    def _estimate_frames(self) -> int | None:
        stream = self._stream
        frames = int(stream.frames or 0)
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        if frames <= 0 and stream.duration and stream.time_base and rate:
            frames = int(float(stream.duration * stream.time_base) * rate)
        if frames <= 0:
            return None
        if self._fps and rate > self._fps:
            return max(1, int(frames * self._fps / rate))
        return frames

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _frames(self) -> Iterator[Any]:
        """Decoded frames, counting the packets (frames the stream holds, skipped or not) in `packets`."""
        for packet in self._container.demux(self._stream):
            if packet.size:
                self.packets += 1
            yield from packet.decode()  # the empty packet at the end flushes the decoder

    def _decode(self) -> None:
        import av

        sampler = FrameSampler(self._fps)
        rate = float(self._stream.average_rate) if self._stream.average_rate else 25.0
        index = -1
        try:
            for vframe in self._frames():
                index += 1
                if self._stop.is_set():
                    return
                pts = float(vframe.time) if vframe.time is not None else index / rate
                self._skip.seen(pts)
                if not sampler.keep(pts):
                    continue
                if vframe.width * vframe.height > self._config.max_pixels:
                    raise InputError(
                        f"{self.name} has {vframe.width}x{vframe.height} frames, over the pixel cap",
                        hint="raise ingest.max_pixels in the config",
                    )
                image = np.asarray(vframe.to_ndarray(format="rgb24"), dtype=np.uint8)
                frame = Frame(image=image, pts=pts, index=index, still=False, origin=self.name)
                if not self._put(frame):
                    return
        except InputError as exc:
            self._put(_Failure(exc))
            return
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            what = "stream" if self._is_network else "file"
            reason = str(exc).replace(self._spec, self.name)
            self._put(
                _Failure(
                    InputError(
                        f"{self.name}: decoding failed after {index + 1} frames ({reason})",
                        hint=f"the {what} is corrupt, truncated or was interrupted",
                    )
                )
            )
            return
        declared = int(self._stream.frames or 0)
        # Frames the decoder skipped were there all the same; without skipping, only decodable frames count.
        held = max(index + 1, self.packets) if self._skip.used else index + 1
        if not self._is_network and declared and held < declared - max(2, declared // 100):
            # The container promises more frames than the file holds: it was cut short.
            self._put(
                _Failure(
                    InputError(
                        f"{self.name} is truncated: it declares {declared} frames but only {held} could be decoded",
                        hint="copy or export the file again",
                    )
                )
            )
            return
        self._put(_END)

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._decode, name=f"decode:{self.name}", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            assert isinstance(item, Frame)
            yield item

    def close(self) -> None:
        """Stop the decoding thread and close the container."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._container.close()


def open_source(spec: str, *, fps: float | None = None, config: IngestConfig | None = None) -> FrameSource:
    """Open a source by what it is: URL, folder, still image or video file.

    Args:
        spec: A path or an rtsp://, http:// or https:// URL.
        fps: Frames per second to analyse (video only); None keeps every frame.
        config: Decoding limits; defaults apply when None.

    Raises:
        InputError: The source does not exist, is empty, or cannot be decoded.

    """
    config = config or IngestConfig()
    if fps is not None and not (math.isfinite(fps) and fps > 0):  # NaN passes `fps <= 0`
        raise InputError(f"--fps must be a positive number, got {fps}", hint="e.g. --fps 5")
    if spec.startswith(NETWORK_SCHEMES):
        return VideoSource(spec, fps=fps, config=config)
    if "://" in spec:
        raise InputError(
            f"unsupported URL scheme in {redact_url(spec)}",
            hint="use rtsp://, http:// or https://, or a path",
        )
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{spec} does not exist", hint="check the path")
    if path.is_dir():
        return ImageFolderSource(path, config=config)
    if path.stat().st_size == 0:
        raise InputError(f"{spec} is empty (0 bytes)", hint="give a video or image file")
    if is_still_image(path):
        return StillImageSource(path, config=config)
    return VideoSource(str(path), fps=fps, config=config)
