"""Licence-plate reading: PP-OCR text detection for candidates, PP-OCRv4 recognition constrained to plate letters.

Both models ship in `rapidocr-onnxruntime`. The recogniser is a CTC network over 6,623 characters; plates use only
A-Z and 0-9, so decoding takes the best of those (or blank) at each step, which stops look-alike CJK characters
from winning. Each candidate's text is normalised and checked against the configured plate formats
(`detect/plate/formats.py`); the best-scoring candidate is the plate.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.core.accel import ort_options
from kuzet.core.errors import ModelError
from kuzet.core.types import Image
from kuzet.detect.plate.formats import PlateFormat, PlateText, normalise
from kuzet.detect.plate.ppocr import PpOcrPlateDetector

PLATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_REC_HEIGHT = 48


@dataclass(frozen=True)
class TextRead:
    """One recognised text line: raw plate characters and per-character confidences."""

    text: str
    confidences: tuple[float, ...]

    @property
    def confidence(self) -> float:
        """Mean character confidence (0 for an empty read)."""
        return float(np.mean(self.confidences)) if self.confidences else 0.0


def _rec_session(threads: int) -> tuple[Any, NDArray[np.intp]]:
    import onnxruntime as ort

    try:
        data = importlib.resources.files("rapidocr_onnxruntime").joinpath("models/ch_PP-OCRv4_rec_infer.onnx")
        model = data.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise ModelError(
            f"the PP-OCR text recogniser could not be loaded from rapidocr-onnxruntime ({exc})",
            hint="pip install rapidocr-onnxruntime",
        ) from None
    options = ort_options(threads)
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    charset = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    # CTC classes: 0 is blank, then the model's characters, then space.
    lookup = {ch: i + 1 for i, ch in enumerate(charset)}
    missing = [c for c in PLATE_ALPHABET if c not in lookup]
    if missing:
        raise ModelError(f"the PP-OCR recogniser lacks plate characters {missing}")
    return session, np.array([0] + [lookup[c] for c in PLATE_ALPHABET], np.intp)


class PlateTextRecognizer:
    """PP-OCRv4 recognition of cropped text lines, restricted to A-Z and 0-9, batched."""

    def __init__(self, *, threads: int = 0, max_width: int = 320) -> None:
        self._session, self._classes = _rec_session(threads)
        self.max_width = max_width

    def read(self, crops: list[Image]) -> list[TextRead]:
        """Text of each RGB crop (one line each)."""
        if not crops:
            return []
        widths = [min(self.max_width, max(16, round(c.shape[1] * _REC_HEIGHT / max(1, c.shape[0])))) for c in crops]
        batch_w = max(widths)
        batch = np.zeros((len(crops), 3, _REC_HEIGHT, batch_w), np.float32)
        for i, (crop, w) in enumerate(zip(crops, widths, strict=True)):
            resized = cv2.resize(crop[:, :, ::-1], (w, _REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
            batch[i, :, :, :w] = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
        (probs,) = self._session.run(None, {"x": batch})
        sub = probs[:, :, self._classes]  # (N, T, 1 + 36): blank and plate characters only
        best = sub.argmax(axis=2)
        conf = sub.max(axis=2)
        reads = []
        for b, c in zip(best, conf, strict=True):
            chars, confs = [], []
            prev = 0
            for k, p in zip(b.tolist(), c.tolist(), strict=True):
                if k != 0 and k != prev:
                    chars.append(PLATE_ALPHABET[k - 1])
                    confs.append(p)
                prev = k
            reads.append(TextRead("".join(chars), tuple(confs)))
        return reads


@dataclass(frozen=True)
class PlateCandidate:
    """A text region that may be a plate, with its read."""

    box: NDArray[np.float32]
    detector_score: float
    read: TextRead


class PlateReader:
    """Plate candidates in an image (PP-OCR text regions of plate shape) with their text."""

    def __init__(self, *, max_side: int = 1280, max_candidates: int = 8, threads: int = 0) -> None:
        self.detector = PpOcrPlateDetector(max_side=max_side, min_aspect=1.2, max_aspect=10.0, threads=threads)
        self.recognizer = PlateTextRecognizer(threads=threads)
        self.max_candidates = max_candidates

    def candidates(self, image: Image) -> list[PlateCandidate]:
        """Every plate-shaped text region (up to `max_candidates`, by detector score) and its read."""
        regions = text_regions(self.detector, image)[: self.max_candidates]
        reads = self.recognizer.read([r[2] for r in regions])
        return [
            PlateCandidate(box=box, detector_score=score, read=read)
            for (box, score, _), read in zip(regions, reads, strict=True)
        ]

    def read(self, image: Image, formats: list[PlateFormat]) -> PlateRead | None:
        """The plate in an image (the best candidate under `formats`), or None."""
        return choose_plate(self.candidates(image), formats)


@dataclass(frozen=True)
class PlateRead:
    """The plate chosen in an image: normalised text, where it is, and the raw read."""

    plate: PlateText
    box: NDArray[np.float32]
    raw: str


def choose_plate(candidates: list[PlateCandidate], formats: list[PlateFormat]) -> PlateRead | None:
    """The candidate most like a plate: format fit x confidence, favouring the tallest text (the registration)."""
    if not candidates:
        return None
    tallest = max(float(c.box[3] - c.box[1]) for c in candidates) or 1.0
    best: PlateRead | None = None
    best_score = 0.0
    for c in candidates:
        plate = normalise(c.read.text, c.read.confidence, formats)
        if plate is None:
            continue
        score = plate.score * float(np.sqrt((c.box[3] - c.box[1]) / tallest))
        if score > best_score:
            best, best_score = PlateRead(plate, c.box, c.read.text), score
    return best


def text_regions(
    detector: PpOcrPlateDetector, image: Image, *, unclip: float = 1.3
) -> list[tuple[NDArray[np.float32], float, Image]]:
    """Plate-shaped text regions as (axis-aligned box, score, upright crop), best score first.

    Each region of the DB probability map is fitted with a rotated rectangle, grown by the DB "unclip" distance
    (area x ratio / perimeter), and cut out with a perspective warp, so tilted plates are read level. Plates have
    their border close to the text, so the ratio is 1.3 rather than PP-OCR's 1.6 for general text (on the US set
    any ratio from 1.0 to 1.45 read 72-73% of plates exactly, 1.6 read 68%).
    """
    prob, sx = detector.text_probability(image)
    sy = prob.shape[0] / image.shape[0]
    mask = (prob > detector.threshold).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < 3 or max(w, h) < 6:
            continue
        x, y, bw, bh = cv2.boundingRect(contour)
        region = mask[y : y + bh, x : x + bw] > 0
        score = float(prob[y : y + bh, x : x + bw][region].mean())
        if score < detector.box_score:
            continue
        grow = w * h * unclip / (2 * (w + h))
        w, h = w + 2 * grow, h + 2 * grow
        if h > w:  # make the long side horizontal
            w, h, angle = h, w, angle + 90
        if not detector.min_aspect <= w / h <= detector.max_aspect:
            continue
        pts = (cv2.boxPoints(((cx, cy), (w, h), angle)) / np.array([sx, sy], np.float32)).astype(np.float32)
        out.append((_upright(image, pts), score, pts))
    out.sort(key=lambda r: -r[1])
    results = []
    for crop, score, pts in out:
        box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], np.float32)
        box[0::2] = np.clip(box[0::2], 0, image.shape[1])
        box[1::2] = np.clip(box[1::2], 0, image.shape[0])
        results.append((box, score, crop))
    return results


def _upright(image: Image, pts: NDArray[np.float32]) -> Image:
    """The quadrilateral `pts` (a rotated rectangle) warped to an upright crop, long side horizontal."""
    # order: top-left, top-right, bottom-right, bottom-left
    s, d = pts.sum(axis=1), np.diff(pts, axis=1)[:, 0]
    tl, br, tr, bl = pts[s.argmin()], pts[s.argmax()], pts[d.argmin()], pts[d.argmax()]
    w = max(2, round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))))
    h = max(2, round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))))
    src = np.array([tl, tr, br, bl], np.float32)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    crop = cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if h > 1.5 * w:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def _crop(image: Image, box: NDArray[np.float32], pad: float = 0.08) -> Image:
    x1, y1, x2, y2 = box.tolist()
    px, py = pad * (x2 - x1), pad * (y2 - y1)
    h, w = image.shape[:2]
    xa, ya = max(0, int(x1 - px)), max(0, int(y1 - py))
    xb, yb = min(w, int(np.ceil(x2 + px))), min(h, int(np.ceil(y2 + py)))
    return np.ascontiguousarray(image[ya : max(yb, ya + 1), xa : max(xb, xa + 1)])
