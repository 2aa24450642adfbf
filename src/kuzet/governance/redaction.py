"""Redaction: faces and licence plates made unrecognisable in stored media and in `kuzet redact` output."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.core.errors import InputError
from kuzet.core.geometry import iou_matrix
from kuzet.core.types import Detections, Image
from kuzet.detect.face.base import FaceDetector


class PlateFinder(Protocol):
    """Anything that finds plate boxes (the PP-OCR plate detector, or a test double)."""

    def detect(self, image: Image) -> Detections:
        """Plate boxes in an RGB image."""
        ...


def expand(boxes: NDArray[np.float32], factor: float, width: int, height: int) -> NDArray[np.int32]:
    """Boxes grown by `factor` of their size on each side, clipped and rounded to pixels; (N, 4) int32."""
    if boxes.shape[0] == 0:
        return np.zeros((0, 4), np.int32)
    wh = boxes[:, 2:] - boxes[:, :2]
    grown = np.concatenate([boxes[:, :2] - factor * wh, boxes[:, 2:] + factor * wh], axis=1)
    grown[:, 0::2] = np.clip(grown[:, 0::2], 0, width)
    grown[:, 1::2] = np.clip(grown[:, 1::2], 0, height)
    return np.round(grown).astype(np.int32)


def obscure(image: Image, boxes: NDArray[np.int32], *, method: str = "pixelate") -> Image:
    """Make each box unrecognisable in place: coarse pixelation, softened ("pixelate"), or a smooth blur ("blur").

    Args:
        image: RGB image, (H, W, 3) uint8; modified in place and returned.
        boxes: Integer boxes (x1, y1, x2, y2), shape (N, 4).
        method: "pixelate" or "blur".
    """
    for x1, y1, x2, y2 in boxes.tolist():
        w, h = x2 - x1, y2 - y1
        if w < 2 or h < 2:
            continue
        roi = image[y1:y2, x1:x2]
        # Six cells across the longer side keep no facial detail. A heavy blur alone is not enough: it leaves a
        # smooth head-shaped blob that face detectors (and people) still read as a face.
        cells = 6 if method == "pixelate" else 4
        side = max(w, h)
        small = cv2.resize(roi, (max(1, w * cells // side), max(1, h * cells // side)), interpolation=cv2.INTER_AREA)
        if method == "blur":
            roi[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            roi[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
            k = max(3, (side // cells) | 1)
            roi[:] = cv2.GaussianBlur(roi, (k, k), 0)
    return image


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """What `redact_image` hid."""

    image: Image
    faces: int
    plates: int


class Redactor:
    """Finds faces and plates and obscures all of them except an optional subject."""

    def __init__(self, faces: FaceDetector, plates: PlateFinder | None, *, method: str = "pixelate") -> None:
        self.faces = faces
        self.plates = plates
        self.method = method

    def redact_image(self, image: Image, *, keep: NDArray[np.float32] | None = None) -> RedactionResult:
        """A redacted copy of `image`; the face overlapping `keep` (x1, y1, x2, y2) most is left visible."""
        out = image.copy()
        h, w = out.shape[:2]
        faces = self.faces.detect(image).boxes
        if keep is not None and faces.shape[0]:
            overlap = iou_matrix(faces, keep[None, :].astype(np.float32))[:, 0]
            subject = int(np.argmax(overlap))
            if overlap[subject] >= 0.3:
                faces = np.delete(faces, subject, axis=0)
        plates = self.plates.detect(image).boxes if self.plates is not None else np.zeros((0, 4), np.float32)
        obscure(out, expand(faces, 0.15, w, h), method=self.method)
        obscure(out, expand(plates, 0.1, w, h), method=self.method)
        return RedactionResult(out, int(faces.shape[0]), int(plates.shape[0]))


@dataclass(frozen=True, slots=True)
class VideoRedactionStats:
    """Figures of one `redact_video` run."""

    frames: int
    seconds: float
    width: int
    height: int
    media_seconds: float

    @property
    def fps(self) -> float:
        """Frames redacted per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        """Media seconds processed per wall-clock second (>= 1 keeps up with real time)."""
        return self.media_seconds / self.seconds if self.seconds > 0 else 0.0


def redact_video(
    source: Path,
    out: Path,
    redactor: Redactor,
    *,
    face_every: int = 2,
    plate_every: int = 6,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> VideoRedactionStats:
    """Redact every frame of a video, detecting faces every `face_every` and plates every `plate_every` frames.

    Between detections the last boxes are reused, grown by a quarter of their size so that moving faces and plates
    stay covered; a detection runs on the first frame, so nothing is ever shown before it. Audio is dropped.
    """
    import av

    try:
        src = av.open(str(source))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"cannot read {source}: {exc}", hint="give a video FFmpeg can decode") from None
    if not src.streams.video:
        src.close()
        raise InputError(f"{source} has no video stream", hint="give a video file")
    vin = src.streams.video[0]
    vin.thread_type = "AUTO"
    rate = vin.average_rate or 25
    start = time.perf_counter()
    frames = 0
    last_pts = 0.0
    faces = np.zeros((0, 4), np.float32)
    plates = np.zeros((0, 4), np.float32)
    if on_start is not None:
        on_start(int(vin.frames) or None)
    try:
        with av.open(str(out), "w") as dst:
            vout = dst.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
            vout.options = {"preset": "veryfast", "crf": "23"}
            for frame in src.decode(vin):
                image = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
                h, w = image.shape[:2]
                if frames % face_every == 0:
                    faces = redactor.faces.detect(image).boxes
                if redactor.plates is not None and frames % plate_every == 0:
                    plates = redactor.plates.detect(image).boxes
                obscure(image, expand(faces, 0.25, w, h), method=redactor.method)
                obscure(image, expand(plates, 0.25, w, h), method=redactor.method)
                new = av.VideoFrame.from_ndarray(image, format="rgb24")
                new.pts = frames
                for packet in vout.encode(new):
                    dst.mux(packet)
                if frame.time is not None:
                    last_pts = float(frame.time)
                frames += 1
                if on_frame is not None:
                    on_frame()
            for packet in vout.encode():
                dst.mux(packet)
    except av.error.FFmpegError as exc:
        out.unlink(missing_ok=True)
        raise InputError(
            f"{source}: decoding failed after {frames} frames ({exc})", hint="the file is damaged"
        ) from None
    finally:
        src.close()
    media = last_pts + 1.0 / float(rate) if frames else 0.0
    return VideoRedactionStats(
        frames, time.perf_counter() - start, vin.codec_context.width, vin.codec_context.height, media
    )
