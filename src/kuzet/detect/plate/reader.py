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

    def __init__(self, *, threads: int = 0, max_width: int = 320, batch: int = 64) -> None:
        self._session, self._classes = _rec_session(threads)
        self.max_width = max_width
        self.batch = batch

    def read(self, crops: list[Image]) -> list[TextRead]:
        """Text of each RGB crop (one line each)."""
        if not crops:
            return []
        widths = [min(self.max_width, max(16, round(c.shape[1] * _REC_HEIGHT / max(1, c.shape[0])))) for c in crops]
        # batches of similar widths (a narrow line padded to the widest crop's width costs as much as the widest);
        # the padding changes what the network reads a little, so crops are batched by `batch` at most
        order = sorted(range(len(crops)), key=lambda i: widths[i])
        reads: dict[int, TextRead] = {}
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            for i, read in zip(chunk, self._read([crops[i] for i in chunk], [widths[i] for i in chunk]), strict=True):
                reads[i] = read
        return [reads[i] for i in range(len(crops))]

    def _read(self, crops: list[Image], widths: list[int]) -> list[TextRead]:
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
    lines: int = 1
    """Text lines the candidate spans (stacked regions: a two- or three-line plate)."""
    joined: bool = False
    """Whether the candidate is several regions read as one (only a national layout can tell it is one plate)."""


class PlateReader:
    """Plate candidates in an image (PP-OCR text regions of plate shape) with their text.

    Besides each text region on its own, a candidate is made of regions that one plate splits into: pieces of one
    line (split by an emblem, a coat of arms or a wide gap) read again as one crop, and lines stacked within one
    plate-shaped area (two- and three-line plates), read top line first.
    """

    def __init__(
        self,
        *,
        max_side: int = 1280,
        max_candidates: int = 8,
        min_side: int = 480,
        small_sides: tuple[int, ...] = (320, 640),
        threads: int = 0,
    ) -> None:
        self.detector = PpOcrPlateDetector(max_side=max_side, min_aspect=0.7, max_aspect=10.0, threads=threads)
        self.recognizer = PlateTextRecognizer(threads=threads)
        self.max_candidates = max_candidates
        self.min_side = min_side
        self.small_sides = small_sides
        self.min_aspect = 1.2
        self.max_two_line_aspect = 4.0

    def candidates(self, image: Image, *, enlarge: bool = True) -> list[PlateCandidate]:
        """Plate-shaped text regions (up to `max_candidates`, by detector score), joined ones, and their reads.

        Regions narrower than a plate (`min_aspect`: a line of two characters) are candidates only as lines of a
        stacked plate. An image whose long side is under `min_side` pixels (a plate crop, a far vehicle) is read
        enlarged to each of `small_sides` (the text detector finds no characters under about 10 pixels, and
        which size separates the character groups best varies). `enlarge=False` reads it as it is: a vehicle cut
        from a traffic camera's frame, whose enlarged bodywork and badges read as short junk "plates" (the car park's
        cars gave `UA` and `VNR`), where no visible plate set was measured.
        """
        long_side = max(image.shape[:2])
        if long_side >= self.min_side or not enlarge:
            return self._candidates(image)
        out: list[PlateCandidate] = []
        for side in self.small_sides:
            scale = side / long_side
            big: Image = np.ascontiguousarray(
                cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC), np.uint8
            )
            out.extend(
                PlateCandidate(
                    box=c.box / scale, detector_score=c.detector_score, read=c.read, lines=c.lines, joined=c.joined
                )
                for c in self._candidates(big)
            )
        return out

    def _candidates(self, image: Image) -> list[PlateCandidate]:
        found = text_regions(self.detector, image)
        out_halves: list[PlateCandidate] = []
        wide = [r for r in found if r[2].shape[1] >= self.min_aspect * r[2].shape[0]][: self.max_candidates]
        narrow = [r for r in found if r[2].shape[1] < self.min_aspect * r[2].shape[0]][: self.max_candidates]
        regions = wide + narrow
        boxes = [r[0] for r in regions]
        rows = same_line_groups(boxes[: len(wide)])
        # a region as tall as two lines may be a two-line plate whose lines the detector did not separate
        squat = [i for i, r in enumerate(wide) if r[2].shape[1] < self.max_two_line_aspect * r[2].shape[0]]
        halves = [half for i in squat for half in _halves(wide[i][2])]
        # the regions in one batch, the joined crops in another: a batch pads its crops to the widest one, which
        # changes what the network reads a little, so the regions read as they do alone
        extra = [_crop(image, _union(boxes, g), 0.04) for g in rows] + halves
        reads = self.recognizer.read([r[2] for r in regions]) + self.recognizer.read(extra)
        for k, i in enumerate(squat):
            top, bottom = reads[len(regions) + len(rows) + 2 * k : len(regions) + len(rows) + 2 * k + 2]
            joined = TextRead(f"{top.text}/{bottom.text}", top.confidences + bottom.confidences)
            out_halves.append(PlateCandidate(box=wide[i][0], detector_score=wide[i][1], read=joined, lines=2))
        out = [
            PlateCandidate(box=box, detector_score=score, read=read)
            for (box, score, _), read in zip(wide, reads[: len(wide)], strict=True)
        ]
        for group, read in zip(rows, reads[len(regions) : len(regions) + len(rows)], strict=True):
            score = float(np.mean([regions[i][1] for i in group]))
            out.append(PlateCandidate(box=_union(boxes, group), detector_score=score, read=read, joined=True))
        for stack in stacked_lines(boxes):
            lines = [reads[i] for i in stack]
            joined = TextRead("/".join(r.text for r in lines), tuple(c for r in lines for c in r.confidences))
            score = float(np.mean([regions[i][1] for i in stack]))
            out.append(PlateCandidate(box=_union(boxes, stack), detector_score=score, read=joined, lines=len(stack)))
        return out + out_halves

    def read(self, image: Image, formats: list[PlateFormat], *, enlarge: bool = True) -> PlateRead | None:
        """The plate in an image (the best candidate under `formats`), or None; see `candidates` for `enlarge`."""
        return choose_plate(self.candidates(image, enlarge=enlarge), formats)


@dataclass(frozen=True)
class PlateRead:
    """The plate chosen in an image: normalised text, where it is, and the raw read (lines separated by `/`)."""

    plate: PlateText
    box: NDArray[np.float32]
    raw: str


def choose_plate(
    candidates: list[PlateCandidate], formats: list[PlateFormat], *, whole_plate: float = 0.8
) -> PlateRead | None:
    """The candidate most like a plate: format fit x confidence, favouring the tallest text (the registration).

    A stacked candidate's text height is its box's height over its number of lines.
    """
    if not candidates:
        return None
    heights = [float(c.box[3] - c.box[1]) / c.lines for c in candidates]
    tallest = max(heights) or 1.0
    # neighbouring texts run together fit a catch-all as well as a plate does: joined pieces need a national layout
    national = [f for f in formats if f.layouts]
    scored: list[tuple[float, PlateRead]] = []
    for c, height in zip(candidates, heights, strict=True):
        plate = normalise(c.read.text, c.read.confidence, national if c.joined else formats)
        if plate is None:
            continue
        score = plate.score * float(np.sqrt(height / tallest))
        scored.append((score, PlateRead(plate, c.box, c.read.text)))
    if not scored:
        return None
    best_score, best = max(scored, key=lambda s: s[0])
    # A plate split into pieces is also read piece by piece, and a piece may fit some layout as well as the whole:
    # of the reads nearly as good under a national layout, the one that covers the best one's box and the most of
    # the plate wins (a catch-all cannot tell a whole plate from a piece with a stray character).
    covering = [
        (len(r.plate.text), s, r)
        for s, r in scored
        if s >= whole_plate * best_score
        and r.plate.region in {f.region for f in national}
        and _covers(r.box, best.box)
        and len(r.plate.text) >= len(best.plate.text)
    ]
    if not covering:
        return best
    return max(covering, key=lambda t: (t[0], t[1]))[2]


def _covers(outer: NDArray[np.float32], inner: NDArray[np.float32]) -> bool:
    """Whether box `outer` holds at least 90% of box `inner`."""
    w = min(float(outer[2]), float(inner[2])) - max(float(outer[0]), float(inner[0]))
    h = min(float(outer[3]), float(inner[3])) - max(float(outer[1]), float(inner[1]))
    area = float((inner[2] - inner[0]) * (inner[3] - inner[1]))
    return w > 0 and h > 0 and w * h >= 0.9 * area


def _union(boxes: list[NDArray[np.float32]], group: tuple[int, ...]) -> NDArray[np.float32]:
    b = np.stack([boxes[i] for i in group])
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()], np.float32)


def same_line_groups(boxes: list[NDArray[np.float32]], *, max_gap: float = 1.0) -> list[tuple[int, ...]]:
    """Runs of two or more boxes side by side on one text line, left to right (indices into `boxes`).

    Side by side: heights within a factor 1.5, vertical centres within a third of the taller height, and the
    horizontal gap (negative where they overlap) under `max_gap` x the taller height: what an emblem, a coat of
    arms or a wide space between character groups leaves between the pieces of one plate.
    """
    order = sorted(range(len(boxes)), key=lambda i: float(boxes[i][0]))
    runs: list[tuple[int, ...]] = []
    for start_at, first in enumerate(order):
        run = [first]
        for j in order[start_at + 1 :]:
            a, b = boxes[run[-1]], boxes[j]
            ha, hb = float(a[3] - a[1]), float(b[3] - b[1])
            h = max(ha, hb)
            gap = float(b[0] - a[2])
            same_row = abs(float(a[1] + a[3]) - float(b[1] + b[3])) / 2 < h / 3
            if same_row and max(ha, hb) < 1.5 * min(ha, hb) and -h < gap < max_gap * h and b[2] > a[2]:
                run.append(j)
                if tuple(run) not in runs:
                    runs.append(tuple(run))
    return runs


def stacked_lines(boxes: list[NDArray[np.float32]]) -> list[tuple[int, ...]]:
    """Runs of two or three boxes stacked one under the other, top first: the lines of one plate.

    Stacked: each line overlaps the next horizontally over at least half the narrower one, the vertical gap is
    under half the taller line's height (negative where the grown boxes overlap), and the heights are within a
    factor 2.
    """

    def follows(a: NDArray[np.float32], b: NDArray[np.float32]) -> bool:
        ha, hb = float(a[3] - a[1]), float(b[3] - b[1])
        overlap = min(float(a[2]), float(b[2])) - max(float(a[0]), float(b[0]))
        narrower = min(float(a[2] - a[0]), float(b[2] - b[0]))
        gap = float(b[1] - a[3])
        below = float(b[1] + b[3]) > float(a[1] + a[3]) + 0.5 * min(ha, hb)
        return (
            below
            and overlap >= 0.5 * narrower
            and -0.5 * min(ha, hb) < gap < 0.5 * max(ha, hb)
            and (max(ha, hb) < 2 * min(ha, hb))
        )

    order = sorted(range(len(boxes)), key=lambda i: float(boxes[i][1] + boxes[i][3]))
    stacks: list[tuple[int, ...]] = []
    for i in order:
        for j in order:
            if i != j and follows(boxes[i], boxes[j]):
                stacks.append((i, j))
                stacks.extend((i, j, k) for k in order if k not in (i, j) and follows(boxes[j], boxes[k]))
    return stacks


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


def _halves(crop: Image) -> tuple[Image, Image]:
    """The top and bottom lines of a two-line crop (each a little over half, so a character cut in two is whole)."""
    h = crop.shape[0]
    return np.ascontiguousarray(crop[: round(0.56 * h)]), np.ascontiguousarray(crop[round(0.44 * h) :])


def _crop(image: Image, box: NDArray[np.float32], pad: float = 0.08) -> Image:
    x1, y1, x2, y2 = box.tolist()
    px, py = pad * (x2 - x1), pad * (y2 - y1)
    h, w = image.shape[:2]
    xa, ya = max(0, int(x1 - px)), max(0, int(y1 - py))
    xb, yb = min(w, int(np.ceil(x2 + px))), min(h, int(np.ceil(y2 + py)))
    return np.ascontiguousarray(image[ya : max(yb, ya + 1), xa : max(xb, xa + 1)])
