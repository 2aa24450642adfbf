"""Face verification on LFW-style pairs: 10-fold accuracy, TAR at FAR, EER, ROC AUC, DET curve."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kuzet.core.errors import InputError
from kuzet.core.types import Detections
from kuzet.detect.face.base import FaceDetector
from kuzet.ingest.images import load_image
from kuzet.recognize.base import FaceAligner, FaceEmbedder

FARS = (1e-2, 1e-3)


@dataclass(frozen=True, slots=True)
class Pair:
    """Two image paths (relative to the root) and whether they show the same person."""

    img1: str
    img2: str
    same: bool


@dataclass(frozen=True, slots=True)
class PairsReport:
    """Verification figures; see `to_json` for the keys."""

    accuracy: float
    accuracy_std: float
    threshold: float
    tar_at_far: dict[str, float]
    eer: float
    auc: float
    n_pairs: int
    n_no_face: int
    n_images: int
    seconds: float
    embedder: str
    detector: str

    def to_json(self) -> dict[str, object]:
        """The figures as a JSON-ready mapping."""
        return {
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "threshold": self.threshold,
            "tar_at_far": self.tar_at_far,
            "eer": self.eer,
            "auc": self.auc,
            "n_pairs": self.n_pairs,
            "n_no_face": self.n_no_face,
            "n_images": self.n_images,
            "seconds": self.seconds,
            "embedder": self.embedder,
            "detector": self.detector,
        }


def read_pairs(path: Path) -> list[Pair]:
    """Read `img1,img2,same` rows (a header row is allowed)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise InputError(f"cannot read pairs file {path}: {exc.strerror}", hint="check the path") from None
    pairs = []
    for n, row in enumerate(rows, start=1):
        if not row or (n == 1 and row[0].strip().lower() == "img1"):
            continue
        if len(row) != 3 or row[2].strip() not in {"0", "1"}:
            raise InputError(f"{path} line {n}: expected img1,img2,same with same 0 or 1", hint="fix the row")
        pairs.append(Pair(row[0].strip(), row[1].strip(), row[2].strip() == "1"))
    if not pairs:
        raise InputError(f"{path} holds no pairs", hint="add rows img1,img2,same")
    return pairs


def make_pairs(labels: Path, *, negatives_per_positive: float = 1.0, seed: int = 0) -> list[Pair]:
    """Every same-identity pair from a `file,identity` labels CSV, plus as many sampled different pairs.

    As many different pairs as there are distinct ones when the photos allow fewer (a small set).

    Raises:
        InputError: The file cannot be read, lacks the columns, has a row without a file or identity or a file
            listed twice, or cannot give both kinds of pair: same-person pairs need an identity with two or more
            photos, different-person pairs at least two identities.
    """
    by_id = read_labels(labels)
    positives = [
        Pair(files[i], files[j], True)
        for files in by_id.values()
        for i in range(len(files))
        for j in range(i + 1, len(files))
    ]
    rng = random.Random(seed)
    ids = sorted(by_id)
    negatives: set[tuple[str, str]] = set()
    sizes = [len(files) for files in by_id.values()]
    distinct = sum(sizes) ** 2 - sum(n * n for n in sizes)  # (photo of one, photo of another): files are unique
    want = min(int(len(positives) * negatives_per_positive), distinct)  # more could never be found
    while len(negatives) < want:
        a, b = rng.sample(ids, 2)
        negatives.add((rng.choice(by_id[a]), rng.choice(by_id[b])))
    return positives + [Pair(a, b, False) for a, b in sorted(negatives)]


def read_labels(labels: Path) -> dict[str, list[str]]:
    """Identity -> its photos, from a `file,identity` labels CSV that can give same- and different-person pairs.

    Raises:
        InputError: See `make_pairs`.
    """
    try:
        with labels.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "not a UTF-8 CSV file"
        raise InputError(f"cannot read labels file {labels}: {problem}", hint="give a CSV of file,identity") from None
    if not rows or "file" not in rows[0] or "identity" not in rows[0]:
        raise InputError(f"{labels} must have columns file,identity", hint="see ../shared/data/README.md")
    by_id: dict[str, list[str]] = {}
    seen: set[str] = set()
    for n, r in enumerate(rows, start=2):  # line 1 is the header
        file, identity = r["file"], r["identity"]
        if not file or not identity:
            raise InputError(f"{labels} line {n}: a row needs a file and an identity", hint="fix the row")
        if file in seen:
            raise InputError(f"{labels} line {n}: {file} is listed twice", hint="label each photo once")
        seen.add(file)
        by_id.setdefault(identity, []).append(file)
    if len(by_id) < 2:
        raise InputError(
            f"{labels} labels one identity only ({next(iter(by_id))}): different-person pairs need at least two",
            hint="label photos of at least two people",
        )
    if all(len(files) < 2 for files in by_id.values()):
        raise InputError(
            f"no identity in {labels} has two or more photos: same-person pairs need two photos of one person",
            hint="label at least two photos of one of the people",
        )
    return by_id


def pick_subject(dets: Detections, width: int, height: int) -> int:
    """Index of the photo's subject: large and near the centre (LFW photos are centred on the subject)."""
    centres = (dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2
    dist = np.linalg.norm(centres - np.array([width / 2, height / 2]), axis=1) / np.hypot(width, height)
    return int(np.argmax(np.sqrt(dets.areas) * (1.0 - 2.0 * dist)))


def embed_images(
    root: Path,
    names: list[str],
    *,
    detector: FaceDetector,
    embedder: FaceEmbedder,
    aligner: FaceAligner,
    max_pixels: int,
    on_image: Callable[[], None] | None = None,
) -> dict[str, NDArray[np.float32] | None]:
    """One descriptor per image (None where no face is found)."""
    return embed_images_with(
        root, names, detector=detector, models=[(embedder, aligner)], max_pixels=max_pixels, on_image=on_image
    )[0]


def embed_images_with(
    root: Path,
    names: list[str],
    *,
    detector: FaceDetector,
    models: Sequence[tuple[FaceEmbedder, FaceAligner]],
    max_pixels: int,
    on_image: Callable[[], None] | None = None,
) -> list[dict[str, NDArray[np.float32] | None]]:
    """One descriptor per image for each (embedder, aligner), from one detection per image (None: no face).

    Every model describes the same face (the subject the detector found), so their scores can be compared and fused.
    """
    out: list[dict[str, NDArray[np.float32] | None]] = [{} for _ in models]
    for name in names:
        image = load_image(root / name, max_pixels=max_pixels)
        dets = detector.detect(image)
        if len(dets) == 0 or dets.landmarks is None:
            for vectors in out:
                vectors[name] = None
        else:
            i = pick_subject(dets, image.shape[1], image.shape[0])
            for vectors, (embedder, aligner) in zip(out, models, strict=True):
                chips = aligner.align(image, dets.boxes[i : i + 1], dets.landmarks[i : i + 1])
                vectors[name] = embedder.embed(chips)[0]
        if on_image is not None:
            on_image()
    return out


def roc_points(scores: NDArray[np.float64], same: NDArray[np.bool_]) -> tuple[NDArray[np.float64], ...]:
    """False-accept and true-accept rates at every distinct threshold, ascending FAR; returns (far, tar, thr)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    far = np.r_[0.0, fp[last] / n_neg]
    tar = np.r_[0.0, tp[last] / n_pos]
    thr = np.r_[np.inf, s[last]]
    return far, tar, thr


@dataclass(frozen=True, slots=True)
class VerificationMetrics:
    """Figures computed from pair scores."""

    accuracy: float
    accuracy_std: float
    threshold: float
    tar_at_far: dict[str, float]
    eer: float
    auc: float


def verification_metrics(scores: NDArray[np.float64], same: NDArray[np.bool_]) -> VerificationMetrics:
    """Accuracy (10-fold CV threshold), TAR at FAR, EER and AUC from pair scores (higher = more alike)."""
    n = len(scores)
    folds = np.arange(n) % 10
    rng = np.random.default_rng(0)
    rng.shuffle(folds)
    accs, thresholds = [], []
    for k in range(10):
        train, test = folds != k, folds == k
        if not test.any():
            continue
        # Candidate thresholds: midpoints between neighbouring training scores (never the test fold's).
        finite = np.unique(scores[train][np.isfinite(scores[train])])
        candidates = (
            np.r_[finite[0] - 1e-6, (finite[1:] + finite[:-1]) / 2, finite[-1] + 1e-6] if finite.size else np.zeros(1)
        )
        train_acc = [((scores[train] >= t) == same[train]).mean() for t in candidates]
        best = float(candidates[int(np.argmax(train_acc))])
        thresholds.append(best)
        accs.append(float(((scores[test] >= best) == same[test]).mean()))
    far, tar, _ = roc_points(scores, same)
    tar_at = {}
    for target in FARS:
        ok = far <= target + 1e-12
        tar_at[f"{target:g}"] = float(tar[ok].max()) if ok.any() else 0.0
    frr = 1.0 - tar
    i = int(np.argmin(np.abs(frr - far)))
    eer = float((frr[i] + far[i]) / 2)
    auc = float(np.trapezoid(np.r_[tar, 1.0], np.r_[far, 1.0]))
    return VerificationMetrics(
        accuracy=float(np.mean(accs)),
        accuracy_std=float(np.std(accs)),
        threshold=float(np.median(thresholds)),
        tar_at_far=tar_at,
        eer=eer,
        auc=auc,
    )


def pair_scores(
    pairs: list[Pair], vectors: dict[str, NDArray[np.float32] | None]
) -> tuple[NDArray[np.float64], NDArray[np.bool_], int]:
    """Cosine similarity per pair; a pair with a missing face scores as an error (never dropped)."""
    scores = np.empty(len(pairs), np.float64)
    same = np.array([p.same for p in pairs], bool)
    missing = 0
    for i, p in enumerate(pairs):
        a, b = vectors[p.img1], vectors[p.img2]
        if a is None or b is None:
            missing += 1
            # Counted wrong whatever the threshold: a same pair is rejected, a different pair accepted.
            scores[i] = -np.inf if p.same else np.inf
        else:
            scores[i] = float(a @ b)
    return scores, same, missing


def plot_det(scores: NDArray[np.float64], same: NDArray[np.bool_], path: Path, *, title: str) -> None:
    """Draw the DET curve (miss rate against false-accept rate, log axes) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar, _ = roc_points(scores, same)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(np.maximum(far, 1e-4), np.maximum(1 - tar, 1e-4), lw=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(1e-4, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("false reject rate (miss)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
