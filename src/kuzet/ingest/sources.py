"""Frame sources: a video file, a still image, a folder of images, or an rtsp:// / http:// stream.

Video is decoded with PyAV (FFmpeg) in a background thread that fills a bounded queue, so decoding overlaps
analysis. Timestamps come from the stream's presentation times, never from the wall clock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from kuzet.config.models import IngestConfig
from kuzet.core.errors import InputError
from kuzet.core.types import Frame
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


def stream_open_error(exc: Exception, url: str, *, timeout_s: float | None = None) -> InputError:
    """The error for a stream that could not be opened, without the credentials FFmpeg's message repeats.

    `timeout_s`: the open timeout, when the attempt took that long (the camera never answered).
    """
    name = redact_url(url)
    reason = f"no answer within {timeout_s:g} s" if timeout_s is not None else str(exc).replace(url, name)
    return InputError(
        f"cannot open stream {name}: {reason}",
        hint="check that the camera is reachable and the URL, port and credentials are right",
    )


class FrameSampler:
    """Keeps about `fps` frames per second of stream time; None keeps every frame."""

    def __init__(self, fps: float | None) -> None:
        self._period = 1.0 / fps if fps else 0.0
        self._next: float | None = None

    def keep(self, pts: float) -> bool:
        """Whether the frame at `pts` seconds is analysed."""
        if self._period == 0.0:
            return True
        if self._next is not None and pts < self._next - self._period - 1.0:
            self._next = None  # the stream's clock jumped back (a camera restarted it): start the grid again
        if self._next is None or pts >= self._next - 1e-6:
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
        options: dict[str, str] = {}
        if spec.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        try:
            self._container = av.open(
                spec,
                options=options,
                timeout=(config.open_timeout_s, config.open_timeout_s) if self._is_network else None,
            )
        except FileNotFoundError:
            raise InputError(f"{self.name} does not exist", hint="check the path") from None
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if self._is_network:
                raise stream_open_error(exc, spec) from None
            raise InputError(
                f"{self.name} cannot be decoded: it is not a video or image, or it is damaged or truncated ({exc})",
                hint="give a video file FFmpeg can decode, an image, a folder of images, or an rtsp:// URL",
            ) from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.name} has no video stream", hint="give a file with video in it")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.expected_frames = self._estimate_frames()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def _decode(self) -> None:
        import av

        sampler = FrameSampler(self._fps)
        rate = float(self._stream.average_rate) if self._stream.average_rate else 25.0
        index = -1
        try:
            for vframe in self._container.decode(self._stream):
                index += 1
                if self._stop.is_set():
                    return
                pts = float(vframe.time) if vframe.time is not None else index / rate
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
        if not self._is_network and declared and index + 1 < declared - max(2, declared // 100):
            # The container promises more frames than the file holds: it was cut short.
            self._put(
                _Failure(
                    InputError(
                        f"{self.name} is truncated: it declares {declared} frames "
                        f"but only {index + 1} could be decoded",
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
    if fps is not None and fps <= 0:
        raise InputError(f"--fps must be positive, got {fps}", hint="e.g. --fps 5")
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
