"""Face detection and redaction measured on WIDER FACE-format sets: `kuzet eval detect` and `kuzet eval redact`.

The ground-truth text format (as WIDER FACE ships it): an image path relative to the image folder, the number of
faces, then one line per face `x1 y1 w h blur expression illumination invalid occlusion pose`; `invalid` faces are
ignored (neither counted when missed nor held against a detector that finds them). When a `labels.csv` with
`file,x,y,w,h,...,in_easy,in_medium,in_hard` lies beside the ground-truth file, figures are also given per subset.

Redaction is measured as it hides faces, not as it detects them: a ground-truth face counts as hidden when at least
`HIDDEN_COVER` of its box lies under obscured pixels, whatever boxes the redactor drew. The share of each image's
area that was obscured is reported beside it, so that "blur everything" cannot pass unnoticed.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kuzet.core.errors import InputError
from kuzet.core.geometry import iou_matrix
from kuzet.core.types import Detections, Image

HIDDEN_COVER = 0.8
"""Share of a face's box that must be obscured for the face to count as hidden."""
IOU = 0.5
WIDTH_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<10", 0, 10),
    ("10-19", 10, 20),
    ("20-29", 20, 30),
    ("30-49", 30, 50),
    ("50+", 50, float("inf")),
)
SUBSETS = ("easy", "medium", "hard")


@dataclass(slots=True)
class GroundTruthImage:
    """One image's faces: boxes (x1, y1, x2, y2) float32 (N, 4), which are valid, and subset membership."""

    file: str
    boxes: NDArray[np.float32]
    valid: NDArray[np.bool_]
    subsets: dict[str, NDArray[np.bool_]] = field(default_factory=dict)


def read_wider_gt(path: Path) -> list[GroundTruthImage]:
    """Parse a WIDER FACE ground-truth file; a malformed line is an error naming it."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}", hint="give a WIDER FACE ground-truth text file") from None
    images: list[GroundTruthImage] = []
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        name = lines[i]
        try:
            count = int(lines[i + 1])
        except (IndexError, ValueError):
            raise InputError(f"{path}:{i + 2}: expected the number of faces of {name}") from None
        rows = []
        # WIDER writes "0" faces followed by one all-zero line.
        for j in range(max(count, 1) if count == 0 else count):
            try:
                values = [float(v) for v in lines[i + 2 + j].split()]
            except (IndexError, ValueError):
                raise InputError(f"{path}:{i + 3 + j}: expected x1 y1 w h blur expression ... for {name}") from None
            if len(values) < 4:
                raise InputError(f"{path}:{i + 3 + j}: a face needs at least x1 y1 w h")
            rows.append(values)
        i += 2 + (max(count, 1) if count == 0 else count)
        if count == 0:
            rows = []
        boxes = np.asarray([[r[0], r[1], r[0] + r[2], r[1] + r[3]] for r in rows], np.float32).reshape(-1, 4)
        invalid = np.asarray([len(r) > 7 and r[7] == 1 for r in rows], bool)
        sizes = (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)
        images.append(GroundTruthImage(name, boxes, ~invalid & sizes))
    if not images:
        raise InputError(f"{path} holds no image", hint="give a WIDER FACE ground-truth text file")
    _read_subsets(path.parent / "labels.csv", images)
    return images


def _read_subsets(labels: Path, images: list[GroundTruthImage]) -> None:
    """Mark each face's easy/medium/hard membership from a labels.csv beside the ground truth, when there is one."""
    if not labels.is_file():
        return
    member: dict[tuple[str, int, int, int, int], dict[str, bool]] = {}
    with labels.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"file", "x", "y", "w", "h", *(f"in_{s}" for s in SUBSETS)} <= set(reader.fieldnames or []):
            return
        for row in reader:
            x, y, w, h = (round(float(row[k])) for k in ("x", "y", "w", "h"))
            member[(row["file"], x, y, w, h)] = {s: row[f"in_{s}"].strip() in ("1", "true", "True") for s in SUBSETS}
    for img in images:
        keys = [
            (img.file, round(b[0]), round(b[1]), round(b[2] - b[0]), round(b[3] - b[1])) for b in img.boxes.tolist()
        ]
        img.subsets = {s: np.asarray([member.get(k, {}).get(s, False) for k in keys], bool) for s in SUBSETS}


def write_wider_gt(images: list[GroundTruthImage], path: Path) -> None:
    """Write images and faces in the WIDER FACE ground-truth format (invalid faces marked invalid)."""
    out = []
    for img in images:
        out.append(img.file)
        out.append(str(len(img.boxes)))
        for box, valid in zip(img.boxes.tolist(), img.valid.tolist(), strict=True):
            x1, y1, x2, y2 = box
            out.append(f"{x1:g} {y1:g} {x2 - x1:g} {y2 - y1:g} 0 0 0 {0 if valid else 1} 0 0")
        if not len(img.boxes):
            out.append("0 0 0 0 0 0 0 0 0 0")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def dlib_voc_as_wider(data_root: Path, out: Path, *, scale: float = 1.0) -> Path:
    """The shared data's dlib crowd photos (`crowd/dlib_voc_faces`, boxes in `labels.csv`) as a WIDER FACE set.

    The images are scaled by `scale` and written losslessly (PNG: the scaled image is what is measured) into `out`,
    with `gt.txt` beside them; faces marked `ignore` are invalid. Returns the ground-truth file.
    """
    import cv2

    src = data_root / "crowd" / "dlib_voc_faces"
    rows: dict[str, list[dict[str, str]]] = {}
    with (src / "labels.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["file"], []).append(row)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for name, faces in sorted(rows.items()):
        image = cv2.imread(str(src / name))
        if image is None:
            raise InputError(f"cannot read {src / name}", hint="check the shared data folder")
        if scale != 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        png = name.replace(".jpg", ".png")
        cv2.imwrite(str(out / png), image)
        boxes = np.asarray(
            [
                [float(r["x"]), float(r["y"]), float(r["x"]) + float(r["w"]), float(r["y"]) + float(r["h"])]
                for r in faces
            ],
            np.float32,
        )
        images.append(GroundTruthImage(png, boxes * scale, np.asarray([r["ignore"] == "0" for r in faces])))
    write_wider_gt(images, out / "gt.txt")
    return out / "gt.txt"


def _bucket(widths: NDArray[np.float32]) -> NDArray[np.int_]:
    edges = np.asarray([b[2] for b in WIDTH_BUCKETS[:-1]], np.float32)
    return np.asarray(np.searchsorted(edges, widths, side="right"), np.int_)


def _load(root: Path, img: GroundTruthImage) -> Image:
    from kuzet.ingest import load_image

    path = root / img.file
    if not path.is_file():
        raise InputError(f"{path} is missing", hint="--root is the folder the ground-truth paths are relative to")
    return load_image(path, max_pixels=100_000_000)


@dataclass(frozen=True, slots=True)
class RedactionOutcome:
    """What a redactor obscured in one image: a boolean mask (H, W) of obscured pixels."""

    obscured: NDArray[np.bool_]


def covered_share(mask: NDArray[np.bool_], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    """For each box (x1, y1, x2, y2), the share of its pixels that are obscured; (N,) float32."""
    h, w = mask.shape
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1)
    out = np.zeros(len(boxes), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        a, b = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
        c, d = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
        area = (b - a) * (d - c)
        if area > 0:
            inside = integral[d, b] - integral[c, b] - integral[d, a] + integral[c, a]
            out[i] = inside / area
    return out


def evaluate_redaction(
    root: Path,
    images: list[GroundTruthImage],
    redact: Callable[[Image], RedactionOutcome],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Share of ground-truth faces hidden, per face width and subset, and the share of image area obscured."""
    hidden_by_bucket = np.zeros(len(WIDTH_BUCKETS), np.int64)
    total_by_bucket = np.zeros(len(WIDTH_BUCKETS), np.int64)
    subset_hidden = dict.fromkeys(SUBSETS, 0)
    subset_total = dict.fromkeys(SUBSETS, 0)
    area_shares: list[float] = []
    seconds = 0.0
    missed: list[dict[str, object]] = []
    for n, img in enumerate(images):
        image = _load(root, img)
        t0 = time.perf_counter()
        outcome = redact(image)
        seconds += time.perf_counter() - t0
        area_shares.append(float(outcome.obscured.mean()))
        boxes = img.boxes[img.valid]
        if len(boxes):
            hidden = covered_share(outcome.obscured, boxes) >= HIDDEN_COVER
            buckets = _bucket(boxes[:, 2] - boxes[:, 0])
            np.add.at(total_by_bucket, buckets, 1)
            np.add.at(hidden_by_bucket, buckets[hidden], 1)
            for s, members in img.subsets.items():
                m = members[img.valid]
                subset_total[s] += int(m.sum())
                subset_hidden[s] += int((m & hidden).sum())
            for box in boxes[~hidden].tolist():
                missed.append({"file": img.file, "box": [round(v, 1) for v in box]})
        if progress is not None:
            progress(n + 1, len(images))
    faces = int(total_by_bucket.sum())
    out: dict[str, object] = {
        "n_images": len(images),
        "n_faces": faces,
        "hidden_cover": HIDDEN_COVER,
        "hidden": {
            "all": _share(int(hidden_by_bucket.sum()), faces),
            **{b[0]: _share(int(hidden_by_bucket[i]), int(total_by_bucket[i])) for i, b in enumerate(WIDTH_BUCKETS)},
        },
        "faces_by_width": {b[0]: int(total_by_bucket[i]) for i, b in enumerate(WIDTH_BUCKETS)},
        "area_obscured": round(float(np.mean(area_shares)) if area_shares else 0.0, 4),
        "ms_per_image": round(1000 * seconds / max(1, len(images)), 1),
        "missed": missed,
    }
    if any(subset_total.values()):
        out["hidden_by_subset"] = {s: _share(subset_hidden[s], subset_total[s]) for s in SUBSETS}
    return out


def evaluate_detection(
    root: Path,
    images: list[GroundTruthImage],
    detect: Callable[[Image], Detections],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Recall and average precision at IoU 0.5 (all faces and per subset), false positives per image, speed."""
    scored: dict[str, list[tuple[float, bool]]] = {"all": [], **{s: [] for s in SUBSETS}}
    positives = dict.fromkeys(scored, 0)
    found = dict.fromkeys(scored, 0)
    false_pos = 0
    seconds = 0.0
    have_subsets = False
    for n, img in enumerate(images):
        image = _load(root, img)
        t0 = time.perf_counter()
        dets = detect(image)
        seconds += time.perf_counter() - t0
        groups = {"all": img.valid, **{s: img.valid & m for s, m in img.subsets.items()}}
        have_subsets = have_subsets or bool(img.subsets)
        matched_any, matched_gt = _match(dets, img.boxes)
        for g, members in groups.items():
            positives[g] += int(members.sum())
            found[g] += int((members & matched_gt).sum())
            for score, gt in zip(dets.scores.tolist(), matched_any.tolist(), strict=True):
                if gt >= 0 and not img.valid[gt]:
                    continue  # a detection of an ignored face is neither right nor wrong
                if g != "all" and gt >= 0 and not members[gt]:
                    continue  # a face of another subset: not a false positive here either
                scored[g].append((score, gt >= 0 and bool(members[gt])))
        false_pos += int(sum(1 for gt in matched_any.tolist() if gt < 0))
        if progress is not None:
            progress(n + 1, len(images))
    keys = ["all", *SUBSETS] if have_subsets else ["all"]
    return {
        "n_images": len(images),
        "n_faces": positives["all"],
        "iou": IOU,
        "recall": {k: _share(found[k], positives[k]) for k in keys},
        "ap": {k: round(_average_precision(scored[k], positives[k]), 4) for k in keys},
        "fp_per_image": round(false_pos / max(1, len(images)), 3),
        "ms_per_image": round(1000 * seconds / max(1, len(images)), 1),
    }


def _match(dets: Detections, gt: NDArray[np.float32]) -> tuple[NDArray[np.int_], NDArray[np.bool_]]:
    """Greedy matching by score: each detection's ground-truth index (-1 if none), and which faces were found."""
    taken = np.zeros(len(gt), bool)
    owner = np.full(len(dets), -1, np.int_)
    if len(gt) and len(dets):
        ious = iou_matrix(dets.boxes, gt)
        for d in np.argsort(-dets.scores, kind="stable"):
            candidates = np.where(~taken & (ious[d] >= IOU))[0]
            if candidates.size:
                g = candidates[np.argmax(ious[d, candidates])]
                taken[g] = True
                owner[d] = g
    return owner, taken


def _average_precision(scored: list[tuple[float, bool]], positives: int) -> float:
    """Area under the precision-recall curve (precision made monotone, as VOC and WIDER do)."""
    if not positives or not scored:
        return 0.0
    order = sorted(scored, key=lambda t: -t[0])
    hits = np.cumsum([1 if ok else 0 for _, ok in order])
    precision = hits / np.arange(1, len(order) + 1)
    recall = hits / positives
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    recall = np.concatenate([[0.0], recall])
    return float(np.sum((recall[1:] - recall[:-1]) * precision))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
