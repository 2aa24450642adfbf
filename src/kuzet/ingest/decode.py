"""Cheaper decoding: hardware decoders, decoder threads, and skipping frames that nothing will look at.

Used by every video source (`ingest.sources.VideoSource` for `kuzet analyze`, `ingest.live.LiveStream` for
`kuzet run`) through the same steps: `choose_hardware` and `hwaccel` before the container opens (FFmpeg attaches
the device to the decoder when the streams are read), `tune_decoder` after, and `NonRefSkip.seen` for every decoded
frame.

Measured on this project's 2-core machine (docs/live.md, "Decoding"): frame threading costs 15-30% more CPU per
frame than one thread and delays frames by threads-1, slice threading costs nothing extra; skipping non-reference
frames (B-frames of most encoders) halves the CPU of decoding a stream that has them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kuzet.config.vision import DecodeConfig
from kuzet.core.accel import cpu_threads
from kuzet.core.errors import ConfigError

if TYPE_CHECKING:
    from av.codec.hwaccel import HWAccel

HARDWARE = ("cuda", "vaapi")
"""Hardware decoders `hwaccel: auto` tries, in this order."""
HARDWARE_WORDS = {"cuda": "NVIDIA NVDEC (cuda)", "vaapi": "VAAPI"}


@functools.cache
def hardware_absent(kind: str) -> str | None:
    """Why hardware decoding `kind` cannot be used on this machine, in plain words; None when it can.

    Probed once per process by opening the device for an H.264 decoder: that FFmpeg was built with the device type
    says nothing about whether the machine has the device (a driver, a GPU, a `/dev/dri` render node).
    """
    import av
    from av.codec.hwaccel import HWAccel, hwdevices_available

    built = hwdevices_available()
    if kind not in built:
        return (
            f"the FFmpeg inside PyAV {av.__version__} was built without {kind} "
            f"(it has: {', '.join(built) or 'no hardware decoders'})"
        )
    try:
        HWAccel(kind).create(av.codec.Codec("h264", "r"))
    except (av.error.FFmpegError, OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        where = "no NVIDIA GPU or driver" if kind == "cuda" else "no VAAPI render device (/dev/dri)"
        return f"{where} could be opened ({detail})"
    return None


def choose_hardware(settings: DecodeConfig) -> str | None:
    """The hardware decoder to open streams with (`cuda`, `vaapi`), or None for software decoding.

    `auto` takes the first of `HARDWARE` the machine has and says nothing when it has none. A stream whose codec the
    device cannot decode (an MJPEG camera on NVDEC, say) is decoded in software either way, as the status reports.

    Raises:
        ConfigError: A hardware decoder was asked for by name and this machine lacks it.

    """
    if settings.hwaccel == "none":
        return None
    if settings.hwaccel == "auto":
        return next((k for k in HARDWARE if hardware_absent(k) is None), None)
    why = hardware_absent(settings.hwaccel)
    if why is not None:
        raise ConfigError(
            f"hardware decoding with {HARDWARE_WORDS[settings.hwaccel]} was asked for "
            f"(decode.hwaccel: {settings.hwaccel}) but this machine cannot: {why}",
            hint="set decode.hwaccel to auto (hardware where present, else software) or none, "
            "or run the camera on a machine that has the device",
        )
    return settings.hwaccel


def hwaccel(kind: str | None) -> HWAccel | None:
    """What `av.open(..., hwaccel=)` takes for `choose_hardware`'s answer (software fallback per stream)."""
    if kind is None:
        return None
    from av.codec.hwaccel import HWAccel

    return HWAccel(kind, allow_software_fallback=True)


def stream_rate(stream: Any) -> float | None:
    """A video stream's frame rate (frames/s) as the container states or FFmpeg guesses it; None if unknown."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return float(rate)
    return None


class NonRefSkip:
    """Lets the decoder skip non-reference frames while that cannot change which moments are analysed.

    Skipping starts when `fps` (frames analysed per second) is at most half the stream's rate. The frames left are
    the stream's reference frames; the sampler then keeps the first of them at or after each analysis time, so a
    sampled frame is late by at most the gap between two frames left. Skipping stops for good (on this connection)
    at the first gap longer than half an analysis period: the stream's reference frames are too sparse
    (`IBBBP` at 10 frames/s analysed at 5), and every frame is decoded again. Recordings are untouched: they copy
    the demuxed packets, which skipping does not change.

    Args:
        codec_context: The opened stream's decoder context (PyAV).
        mode: `auto` or `off` (`DecodeConfig.skip_nonref`).
        fps: Frames analysed per second; None analyses every frame (nothing is skipped).
        rate: The stream's frame rate (frames/s); None when unknown (nothing is skipped).

    """

    def __init__(self, codec_context: Any, *, mode: str, fps: float | None, rate: float | None) -> None:
        self._context = codec_context
        self.active = bool(mode == "auto" and fps and rate and fps <= rate / 2)
        """Whether the decoder skips non-reference frames now."""
        self.used = self.active
        """Whether it skipped at all on this connection."""
        self.stopped = ""
        """Why skipping stopped on this connection (empty: it did not)."""
        self._limit = 0.5 / fps + 1e-6 if fps else 0.0
        self._last: float | None = None
        if self.active:
            codec_context.skip_frame = "NONREF"

    def seen(self, t: float | None) -> None:
        """A decoded frame's own time (seconds on the stream's clock; None: unknown)."""
        if not self.active or t is None:
            return
        if self._last is not None and t - self._last > self._limit:
            self.active = False
            self._context.skip_frame = "DEFAULT"
            self.stopped = f"reference frames {t - self._last:.2f} s apart"
        self._last = t


@dataclass(frozen=True, slots=True)
class DecoderSetup:
    """How a stream is being decoded."""

    codec: str
    """FFmpeg's name of the codec (`h264`, `hevc`, `mjpeg`)."""
    hardware: str | None
    """The hardware device decoding it (`cuda`, `vaapi`), None: software."""
    threads: int
    thread_type: str
    """`slice` or `frame` (software decoding)."""

    def describe(self, skip: NonRefSkip | None = None, *, skipped: int = 0, frames: int = 0) -> str:
        """In words, e.g. `h264 software, 2 slice threads; non-reference frames skipped (58%)`.

        `skipped` of `frames`: frames the decoder skipped so far, of those the stream held.
        """
        if self.hardware:
            text = f"{self.codec} on {HARDWARE_WORDS.get(self.hardware, self.hardware)}"
        else:
            s = "" if self.threads == 1 else "s"
            text = f"{self.codec} software, {self.threads} {self.thread_type} thread{s}"
        if skip is not None and skip.active and frames > 0 and skipped * 100 >= frames:
            text += f"; non-reference frames skipped ({100 * skipped / frames:.0f}%)"
        elif skip is not None and skip.stopped:
            text += f"; every frame decoded ({skip.stopped})"
        return text


def tune_decoder(
    stream: Any, settings: DecodeConfig, *, fps: float | None, hardware: str | None
) -> tuple[DecoderSetup, NonRefSkip]:
    """Set the threads and frame skipping of an opened container's video stream, before its first packet.

    `hardware`: the device the container was opened with (`choose_hardware`). Hardware decoding keeps FFmpeg's own
    threading. Software decoding gets `settings.threads` threads (0: this
    process's share of the cores, `core.accel.cpu_threads`) of `settings.thread_type` (`auto`: slice).
    """
    context = stream.codec_context
    if hardware is not None and context.is_hwaccel:
        threads, kind = int(context.thread_count), "frame"
    else:
        hardware = None
        threads = cpu_threads(settings.threads)
        kind = "frame" if settings.thread_type == "frame" else "slice"
        context.thread_count = threads
        context.thread_type = kind.upper()
    skip = NonRefSkip(context, mode=settings.skip_nonref, fps=fps, rate=stream_rate(stream))
    return DecoderSetup(codec=str(context.name), hardware=hardware, threads=threads, thread_type=kind), skip
