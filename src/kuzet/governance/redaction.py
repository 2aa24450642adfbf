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
    """Make each box unrecognisable in place: a coarse mosaic ("pixelate") or a smooth, coarse blur ("blur").

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
        # Six cells across the longer side keep no facial detail. A heavy Gaussian blur alone is not enough: it
        # leaves a smooth head-shaped blob that face detectors (and people) still read as a face. Both methods
        # cost two small resizes, whatever the size of the region.
        cells = 6 if method == "pixelate" else 4
        side = max(w, h)
        small = cv2.resize(roi, (max(1, w * cells // side), max(1, h * cells // side)), interpolation=cv2.INTER_AREA)
        smooth = cv2.INTER_LINEAR if method == "blur" else cv2.INTER_NEAREST
        roi[:] = cv2.resize(small, (w, h), interpolation=smooth)
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

    def redact_image(
        self,
        image: Image,
        *,
        keep: NDArray[np.float32] | None = None,
        keep_plates_in: NDArray[np.float32] | None = None,
    ) -> RedactionResult:
        """A redacted copy of `image`.

        The face overlapping `keep` (x1, y1, x2, y2) most is left visible, and so are plates whose centre lies in
        `keep_plates_in` (a violating vehicle's box: its plate is the evidence; every other plate is hidden).
        """
        out = image.copy()
        h, w = out.shape[:2]
        faces = self.faces.detect(image).boxes
        if keep is not None and faces.shape[0]:
            overlap = iou_matrix(faces, keep[None, :].astype(np.float32))[:, 0]
            subject = int(np.argmax(overlap))
            if overlap[subject] >= 0.3:
                faces = np.delete(faces, subject, axis=0)
        plates = self.plates.detect(image).boxes if self.plates is not None else np.zeros((0, 4), np.float32)
        if keep_plates_in is not None and plates.shape[0]:
            cx, cy = (plates[:, 0] + plates[:, 2]) / 2, (plates[:, 1] + plates[:, 3]) / 2
            x1, y1, x2, y2 = keep_plates_in.tolist()
            plates = plates[~((cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2))]
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
    face_every: int = 4,
    plate_every: int = 15,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> VideoRedactionStats:
    """Redact every frame of a video, detecting faces every `face_every` and plates every `plate_every` frames.

    Decoding and encoding run in their own threads (FFmpeg and onnxruntime release the GIL), so the detectors get
    the cores in between. Between detections the last boxes move with their measured velocity and are grown by a
    third of their size, so moving faces and plates stay covered; detection runs on the first frame, so nothing is
    shown before it. Audio is dropped.
    """
    import queue
    import threading

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
    width, height = vin.codec_context.width, vin.codec_context.height
    if on_start is not None:
        on_start(int(vin.frames) or None)
    decoded: queue.Queue[object] = queue.Queue(maxsize=8)
    encoded: queue.Queue[object] = queue.Queue(maxsize=8)
    errors: list[BaseException] = []
    end = object()

    def decode() -> None:
        try:
            for frame in src.decode(vin):
                decoded.put((np.asarray(frame.to_ndarray(format="rgb24"), np.uint8), frame.time))
        except BaseException as exc:  # handed to the main thread, which raises it
            errors.append(exc)
        finally:
            decoded.put(end)

    start = time.perf_counter()
    frames = 0
    last_pts = 0.0
    tracks = _BoxMotion()
    plates = np.zeros((0, 4), np.float32)
    try:
        with av.open(str(out), "w") as dst:
            vout = dst.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            vout.options = {"preset": "ultrafast", "crf": "23"}

            def encode() -> None:
                try:
                    while (item := encoded.get()) is not end:
                        assert isinstance(item, av.VideoFrame)
                        for packet in vout.encode(item):
                            dst.mux(packet)
                    for packet in vout.encode():
                        dst.mux(packet)
                except BaseException as exc:
                    errors.append(exc)

            reader = threading.Thread(target=decode, daemon=True)
            writer = threading.Thread(target=encode, daemon=True)
            reader.start()
            writer.start()
            while (item := decoded.get()) is not end:
                assert isinstance(item, tuple)
                image, pts = item
                h, w = image.shape[:2]
                if frames % face_every == 0:
                    tracks.observe(redactor.faces.detect(image).boxes, frames)
                if redactor.plates is not None and frames % plate_every == 0:
                    plates = redactor.plates.detect(image).boxes
                obscure(image, expand(tracks.at(frames), 0.33, w, h), method=redactor.method)
                obscure(image, expand(plates, 0.33, w, h), method=redactor.method)
                new = av.VideoFrame.from_ndarray(image, format="rgb24")
                new.pts = frames
                encoded.put(new)
                if pts is not None:
                    last_pts = float(pts)
                frames += 1
                if on_frame is not None:
                    on_frame()
            encoded.put(end)
            writer.join()
            reader.join()
        if errors:
            raise errors[0]
    except av.error.FFmpegError as exc:
        out.unlink(missing_ok=True)
        raise InputError(
            f"{source}: decoding failed after {frames} frames ({exc})", hint="the file is damaged"
        ) from None
    finally:
        src.close()
    media = last_pts + 1.0 / float(rate) if frames else 0.0
    return VideoRedactionStats(frames, time.perf_counter() - start, width, height, media)


class _BoxMotion:
    """Boxes from the last detection moved by their velocity since the detection before (matched by IoU)."""

    def __init__(self) -> None:
        self.boxes = np.zeros((0, 4), np.float32)
        self.velocity = np.zeros((0, 4), np.float32)
        self.frame = 0

    def observe(self, boxes: NDArray[np.float32], frame: int) -> None:
        velocity = np.zeros_like(boxes)
        if self.boxes.shape[0] and boxes.shape[0] and frame > self.frame:
            ious = iou_matrix(boxes, self.boxes)
            best = ious.argmax(axis=1)
            matched = ious[np.arange(boxes.shape[0]), best] > 0.2
            velocity[matched] = (boxes[matched] - self.boxes[best[matched]]) / (frame - self.frame)
        self.boxes, self.velocity, self.frame = boxes, velocity, frame

    def at(self, frame: int) -> NDArray[np.float32]:
        moved: NDArray[np.float32] = (self.boxes + self.velocity * (frame - self.frame)).astype(np.float32)
        # Cover both where the face was and where it is predicted to be.
        return np.concatenate([self.boxes, moved]) if frame != self.frame else self.boxes
