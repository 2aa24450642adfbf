"""`kuzet eval calibrate`: impostor and genuine scores measured with the production detector and embedder."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import InputError
from kuzet.detect.face import build_face_detector
from kuzet.eval.pairs import Pair, embed_images_with, read_pairs
from kuzet.governance.calibration import Calibration, CalibrationSet, make_calibration
from kuzet.recognize import build_face_aligner, build_face_embedder
from kuzet.services.context import Models


def read_labels(path: Path) -> dict[str, str]:
    """`file,identity` rows: each image's identity.

    Raises:
        InputError: The file is unreadable or lacks those columns.
    """
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(f"cannot read labels file {path}: {exc.strerror}", hint="check the path") from None
    if not rows or "file" not in rows[0] or "identity" not in rows[0]:
        raise InputError(f"{path} must have columns file,identity", hint="see ../shared/data/README.md")
    return {r["file"].strip(): r["identity"].strip() for r in rows}


def all_pairs(labels: dict[str, str]) -> list[Pair]:
    """Every pair of images of a labelled set: same identity or not (no sampling, so no pair is left to chance)."""
    names = sorted(labels)
    return [
        Pair(a, b, labels[a] == labels[b])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if labels[a] and labels[b]
    ]


def measure_set(
    root: Path,
    pairs: list[Pair],
    *,
    name: str,
    labels_file: Path,
    config: KuzetConfig,
    on_image: Callable[[], None] | None = None,
) -> tuple[CalibrationSet, list[float], list[float]]:
    """Scores of one set's pairs: (what was measured, impostor scores, genuine scores).

    A pair with an image where no face is found is left out (a face not found cannot be falsely matched) and the
    image counted in `no_face`.
    """
    names = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise InputError(
            f"{len(missing)} image(s) in {labels_file} are not under {root}, e.g. {missing[0]}", hint="check --root"
        )
    fusion = Models(config).face_fusion
    embedders = config.face_embedders
    per_model = embed_images_with(
        root,
        names,
        detector=build_face_detector(config.face_detector),
        models=[(build_face_embedder(c), build_face_aligner(c)) for c in embedders],
        max_pixels=config.ingest.max_pixels,
        on_image=on_image,
    )
    found: list[tuple[Pair, list[float]]] = []
    for p in pairs:
        ends = [(v[p.img1], v[p.img2]) for v in per_model]
        pairs_found = [(a, b) for a, b in ends if a is not None and b is not None]
        if len(pairs_found) == len(ends):
            found.append((p, [float(np.dot(a, b)) for a, b in pairs_found]))
    cosines = np.array([c for _, c in found], np.float64).reshape(len(found), len(embedders))
    by_model: dict[str, NDArray[np.float64]] = {c.type: cosines[:, k] for k, c in enumerate(embedders)}
    scores = cosines[:, 0] if fusion is None else fusion.fuse(by_model)
    impostor = [float(x) for x, (p, _) in zip(scores, found, strict=True) if not p.same]
    genuine = [float(x) for x, (p, _) in zip(scores, found, strict=True) if p.same]
    measured = CalibrationSet(
        name=name,
        labels=labels_file.name,
        sha256=hashlib.sha256(labels_file.read_bytes()).hexdigest(),
        images=len(names),
        no_face=sum(1 for n in names if any(v[n] is None for v in per_model)),
        impostor_pairs=len(impostor),
        genuine_pairs=len(genuine),
    )
    return measured, impostor, genuine


def run_calibration(
    *,
    labels: list[Path],
    pairs: list[Path],
    root: Path | None,
    config: KuzetConfig,
    progress: Callable[[str, int], Callable[[], None]] | None = None,
) -> Calibration:
    """Impostor and genuine scores of every given set with the configured detector and embedder.

    `labels` files (`file,identity`) give every pair of their images; `pairs` files (`img1,img2,same`) just theirs.
    Image paths are relative to `root`, else to the folder of their file. `progress(what, total)` returns a
    callback run once per image.

    Raises:
        InputError: No file given, or an unreadable one.
    """
    if not labels and not pairs:
        raise InputError("nothing to measure", hint="give --labels file,identity CSVs or --pairs img1,img2,same CSVs")
    sets: list[CalibrationSet] = []
    impostor: list[float] = []
    genuine: list[float] = []
    jobs = [(f, all_pairs(read_labels(f))) for f in labels] + [(f, read_pairs(f)) for f in pairs]
    for file, set_pairs in jobs:
        folder = root or file.parent
        name = folder.resolve().name
        n_images = len({p.img1 for p in set_pairs} | {p.img2 for p in set_pairs})
        tick = progress(name, n_images) if progress is not None else None
        measured, imp, gen = measure_set(folder, set_pairs, name=name, labels_file=file, config=config, on_image=tick)
        sets.append(measured)
        impostor += imp
        genuine += gen
    return make_calibration(
        embedder=config.face_matcher,
        detector=config.face_detector.type,
        sets=sets,
        impostor=impostor,
        genuine=genuine,
    )
