"""Redaction: faces and licence plates made unrecognisable in stored media and in `kuzet redact` output."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import RedactionConfig
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


def plate_zones(vehicles: NDArray[np.float32], *, end: float = 0.25, middle: float = 0.8) -> NDArray[np.float32]:
    """Where a vehicle's plates can be, when a plate is too small for the plate detector to find.

    Plates sit at a vehicle's two ends: the outer `end` of the box along its longer side (its direction of travel
    in a top-down view), over the `middle` of its width; and, seen from the front or the back (or the side, along
    the road), low in the middle of the box: its bottom `end` over its `middle`. Hiding these costs some
    bodywork; missing a plate of 25 pixels, which PP-OCR does not find, costs a stranger's number. Returns three
    boxes per vehicle, (3N, 4).
    """
    if vehicles.shape[0] == 0:
        return np.zeros((0, 4), np.float32)
    x1, y1, x2, y2 = (vehicles[:, i] for i in range(4))
    w, h = x2 - x1, y2 - y1
    tall = h >= w
    side = (1 - middle) / 2
    # tall boxes: bands at the top and bottom; wide boxes: bands at the left and right
    ax1 = np.where(tall, x1 + side * w, x1)
    ax2 = np.where(tall, x2 - side * w, x1 + end * w)
    ay1 = np.where(tall, y1, y1 + side * h)
    ay2 = np.where(tall, y1 + end * h, y2 - side * h)
    bx1 = np.where(tall, ax1, x2 - end * w)
    bx2 = np.where(tall, ax2, x2)
    by1 = np.where(tall, y2 - end * h, ay1)
    by2 = np.where(tall, y2, ay2)
    first = np.stack([ax1, ay1, ax2, ay2], axis=1)
    second = np.stack([bx1, by1, bx2, by2], axis=1)
    low = np.stack([x1 + side * w, y2 - end * h, x2 - side * w, y2], axis=1)
    return np.concatenate([first, second, low]).astype(np.float32)


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
    """What `redact_image` hid: the redacted copy, counts, and the regions obscured (x1, y1, x2, y2) int32 (N, 4)."""

    image: Image
    faces: int
    plates: int
    regions: NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 4), np.int32))


FACE_GROWTH = 0.25
"""Default growth of each face box on every side, as a share of its size (a detector's box is tight; a face is not)."""


class Redactor:
    """Finds faces and plates and obscures all of them except an optional subject."""

    def __init__(
        self,
        faces: FaceDetector,
        plates: PlateFinder | None,
        *,
        method: str = "pixelate",
        face_growth: float = FACE_GROWTH,
    ) -> None:
        self.faces = faces
        self.plates = plates
        self.method = method
        self.face_growth = face_growth

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
            faces = faces[~_same_face(faces, keep.astype(np.float32))]
        plates = self.plates.detect(image).boxes if self.plates is not None else np.zeros((0, 4), np.float32)
        if keep_plates_in is not None and plates.shape[0]:
            cx, cy = (plates[:, 0] + plates[:, 2]) / 2, (plates[:, 1] + plates[:, 3]) / 2
            x1, y1, x2, y2 = keep_plates_in.tolist()
            plates = plates[~((cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2))]
        regions = np.concatenate([expand(faces, self.face_growth, w, h), expand(plates, 0.1, w, h)])
        obscure(out, regions, method=self.method)
        return RedactionResult(out, int(faces.shape[0]), int(plates.shape[0]), regions)


def production_redactor(
    config: RedactionConfig,
    *,
    video: bool = False,
    method: str = "pixelate",
    plates: PlateFinder | None = None,
    find_plates: bool = True,
) -> Redactor:
    """The redactor every path uses (`kuzet redact`, snapshots, replays, exports, evidence, `kuzet eval redact`).

    Faces: recall-first (`RecallFaceFinder`, tuned for pace in video). Plates: the PP-OCR plate detector at 960 px
    for images and 640 px for video, unless `plates` is given (or `find_plates` is off).
    """
    from kuzet.detect.face.recall import RecallFaceFinder

    if plates is None and find_plates:
        from kuzet.detect.plate.ppocr import PpOcrPlateDetector

        plates = PpOcrPlateDetector(max_side=640 if video else 960)
    return Redactor(RecallFaceFinder(config, video=video), plates, method=method, face_growth=config.expand)


def _same_face(faces: NDArray[np.float32], subject: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Which boxes are the subject's own face: overlapping it by IoU 0.3, or lying mostly (half or more) inside it.

    Two detectors may each find the subject with slightly different boxes; all of them are the subject.
    """
    ious = iou_matrix(faces, subject[None, :])[:, 0]
    ix = np.clip(np.minimum(faces[:, 2], subject[2]) - np.maximum(faces[:, 0], subject[0]), 0, None)
    iy = np.clip(np.minimum(faces[:, 3], subject[3]) - np.maximum(faces[:, 1], subject[1]), 0, None)
    area = np.maximum((faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]), 1e-6)
    return np.asarray((ious >= 0.3) | (ix * iy / area >= 0.5), bool)


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
    source: Path | BinaryIO,
    out: Path,
    redactor: Redactor,
    *,
    face_every: int = 2,
    plate_every: int = 15,
    hold_s: float = 0.5,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[], None] | None = None,
    also_hide: Callable[[Image], NDArray[np.float32]] | None = None,
) -> VideoRedactionStats:
    """Redact every frame of a video, detecting faces every `face_every` and plates every `plate_every` frames.

    Decoding and encoding run in their own threads (FFmpeg and onnxruntime release the GIL), so the detectors get
    the cores in between. Between detections the last boxes move with their measured velocity and are grown by a
    third of their size, so moving faces and plates stay covered; a face missed by one detection stays hidden where
    it was heading for `hold_s` seconds (tracks carried across frames); detection runs on the first frame, so
    nothing is shown before it. Audio is dropped. An MP4 is H.264 (yuv420p) with its index at the start, so that a
    browser can play it. `source` may be a file object (a decrypted recording that never touches the disk).
    `also_hide` gives more regions to hide on every frame (a traffic camera's vehicle ends, where small plates are).
    """
    import queue
    import threading

    import av

    label = source if isinstance(source, Path) else "the video"
    try:
        src = av.open(str(source) if isinstance(source, Path) else source, "r")
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"cannot read {label}: {exc}", hint="give a video FFmpeg can decode") from None
    if not src.streams.video:
        src.close()
        raise InputError(f"{label} has no video stream", hint="give a video file")
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
    tracks = _BoxMotion(hold=max(0, round(hold_s * float(rate))))
    plates = np.zeros((0, 4), np.float32)
    try:
        # MP4 with its index first ("faststart"): a browser plays it while it downloads, and needs no seek to the end
        mp4 = out.suffix.lower() in (".mp4", ".m4v", ".mov")
        with av.open(str(out), "w", container_options={"movflags": "+faststart"} if mp4 else {}) as dst:
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
                extra = also_hide(image) if also_hide is not None else None  # on the picture as it came
                if frames % face_every == 0:
                    tracks.observe(redactor.faces.detect(image).boxes, frames)
                if redactor.plates is not None and frames % plate_every == 0:
                    plates = redactor.plates.detect(image).boxes
                obscure(image, expand(tracks.at(frames), 0.33, w, h), method=redactor.method)
                obscure(image, expand(plates, 0.33, w, h), method=redactor.method)
                if extra is not None:
                    obscure(image, expand(extra, 0.1, w, h), method=redactor.method)
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
            f"{label}: decoding failed after {frames} frames ({exc})", hint="the file is damaged"
        ) from None
    finally:
        src.close()
    media = last_pts + 1.0 / float(rate) if frames else 0.0
    return VideoRedactionStats(frames, time.perf_counter() - start, width, height, media)


class _BoxMotion:
    """Face boxes followed across frames, each moving with its measured velocity.

    A box that a detection misses is kept (still moving) for `hold` frames before it is let go: recall first, so a
    face one detection missed is not exposed.
    """

    def __init__(self, *, hold: int = 0) -> None:
        self.hold = hold
        self.boxes = np.zeros((0, 4), np.float32)
        self.velocity = np.zeros((0, 4), np.float32)
        self.seen = np.zeros(0, np.int64)
        """Frame each box was last detected at."""
        self.frame = 0

    def observe(self, boxes: NDArray[np.float32], frame: int) -> None:
        velocity = np.zeros_like(boxes)
        lost = np.ones(self.boxes.shape[0], bool)
        if self.boxes.shape[0] and boxes.shape[0] and frame > self.frame:
            ious = iou_matrix(boxes, self._moved(frame))  # matched where each was heading
            best = ious.argmax(axis=1)
            matched = ious[np.arange(boxes.shape[0]), best] > 0.2
            velocity[matched] = (boxes[matched] - self.boxes[best[matched]]) / (frame - self.frame)
            lost[best[matched]] = False
        # Boxes no detection matched this time are carried on while they are recent enough.
        carried = lost & (frame - self.seen <= self.hold)
        moved = self._moved(frame)
        self.boxes = np.concatenate([boxes, moved[carried]]).astype(np.float32)
        self.velocity = np.concatenate([velocity, self.velocity[carried]]).astype(np.float32)
        self.seen = np.concatenate([np.full(boxes.shape[0], frame, np.int64), self.seen[carried]])
        self.frame = frame

    def _moved(self, frame: int) -> NDArray[np.float32]:
        return np.asarray(self.boxes + self.velocity * (frame - self.frame), np.float32)

    def at(self, frame: int) -> NDArray[np.float32]:
        moved = self._moved(frame)
        # Cover both where the face was and where it is predicted to be.
        return np.concatenate([self.boxes, moved]) if frame != self.frame else self.boxes
