"""Runs evaluations with the configured models, with progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import Progress

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import InputError
from kuzet.core.types import Image
from kuzet.detect.face import build_face_detector
from kuzet.eval.pairs import (
    Pair,
    PairsReport,
    embed_images,
    embed_images_with,
    pair_scores,
    plot_det,
    read_pairs,
    verification_metrics,
)
from kuzet.recognize import build_face_aligner, build_face_embedder, face_embedder_config
from kuzet.recognize.fusion import ScoreFusion, load_fusion


def run_pairs(
    root: Path,
    pairs_csv: Path,
    *,
    config: KuzetConfig,
    plot: Path | None = None,
    console: Console | None = None,
) -> PairsReport:
    """Evaluate face verification on a pairs file with the configured detector and embedder."""
    pairs = _checked_pairs(root, pairs_csv)
    names = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})
    detector = build_face_detector(config.face_detector)
    embedder = build_face_embedder(config.face_embedder)
    aligner = build_face_aligner(config.face_embedder)
    start = time.perf_counter()
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("embedding images", total=len(names))
        vectors = embed_images(
            root,
            names,
            detector=detector,
            embedder=embedder,
            aligner=aligner,
            max_pixels=config.ingest.max_pixels,
            on_image=lambda: progress.advance(task),
        )
    scores, same, n_missing = pair_scores(pairs, vectors)
    if plot is not None:
        plot_det(scores, same, plot, title=f"DET: {pairs_csv.name} ({embedder.name})")
    seconds = time.perf_counter() - start
    return _report(scores, same, n_missing, len(names), seconds, embedder.name, detector.name)


@dataclass(frozen=True, slots=True)
class ModelsReport:
    """`kuzet eval pairs --models`: each model's figures on the same pairs and faces, and their fusion's."""

    models: dict[str, PairsReport]
    fusion: PairsReport | None
    fusion_rule: str | None

    def to_json(self) -> dict[str, object]:
        """The figures as a JSON-ready mapping: `models` (name -> figures) and `fusion` (figures and rule, or None)."""
        fusion: dict[str, object] | None = None
        if self.fusion is not None:
            fusion = {**self.fusion.to_json(), "rule": self.fusion_rule}
        return {"models": {name: r.to_json() for name, r in self.models.items()}, "fusion": fusion}


def run_pairs_models(
    root: Path,
    pairs_csv: Path,
    *,
    config: KuzetConfig,
    models: Sequence[str],
    fusion: ScoreFusion | None = None,
    console: Console | None = None,
) -> ModelsReport:
    """Evaluate several face embedders on one pairs file, side by side, and the fusion of their scores.

    One detection per image serves every model, so they describe the same faces. A model named as the configured
    embedder's `type` runs with the configured settings, the others with their defaults. The fusion (the shipped
    constants unless `fusion` is given) is reported when every model it fuses is among `models`.
    """
    pairs = _checked_pairs(root, pairs_csv)
    names = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})
    if not models:
        raise InputError("--models names no model", hint="e.g. --models dlib-resnet,sface")
    if len(set(models)) != len(models):
        raise InputError(f"--models {','.join(models)}: name each model once", hint="e.g. --models dlib-resnet,sface")
    configs = [config.face_embedder if m == config.face_embedder.type else face_embedder_config(m) for m in models]
    detector = build_face_detector(config.face_detector)
    built = [(build_face_embedder(c), build_face_aligner(c)) for c in configs]
    if fusion is None:
        fusion = load_fusion()
    start = time.perf_counter()
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("embedding images", total=len(names))
        vectors = embed_images_with(
            root,
            names,
            detector=detector,
            models=built,
            max_pixels=config.ingest.max_pixels,
            on_image=lambda: progress.advance(task),
        )
    seconds = time.perf_counter() - start
    reports: dict[str, PairsReport] = {}
    scores: dict[str, NDArray[np.float64]] = {}
    for (embedder, _), per_image in zip(built, vectors, strict=True):
        s, same, n_missing = pair_scores(pairs, per_image)
        scores[embedder.name] = s
        reports[embedder.name] = _report(s, same, n_missing, len(names), seconds, embedder.name, detector.name)
    fused: PairsReport | None = None
    if all(m in scores for m in fusion.model_names):
        s = fusion.fuse(scores)
        same = np.array([p.same for p in pairs], bool)
        n_missing = int((~np.isfinite(s)).sum())
        fused = _report(s, same, n_missing, len(names), seconds, fusion.label, detector.name)
    return ModelsReport(models=reports, fusion=fused, fusion_rule=fusion.rule if fused is not None else None)


def _report(
    scores: NDArray[np.float64],
    same: NDArray[np.bool_],
    n_missing: int,
    n_images: int,
    seconds: float,
    embedder: str,
    detector: str,
) -> PairsReport:
    """Figures of pair scores (N,) with their labels (N,)."""
    m = verification_metrics(scores, same)
    return PairsReport(
        accuracy=m.accuracy,
        accuracy_std=m.accuracy_std,
        threshold=m.threshold,
        tar_at_far=m.tar_at_far,
        eer=m.eer,
        auc=m.auc,
        n_pairs=len(scores),
        n_no_face=n_missing,
        n_images=n_images,
        seconds=seconds,
        embedder=embedder,
        detector=detector,
    )


def _checked_pairs(root: Path, pairs_csv: Path) -> list[Pair]:
    """The pairs of a file whose images all lie under `root`."""
    if not root.is_dir():
        raise InputError(f"--root {root} is not a folder", hint="give the folder the pair paths are relative to")
    pairs = read_pairs(pairs_csv)
    names = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise InputError(
            f"{len(missing)} image(s) in {pairs_csv} are not under {root}, e.g. {missing[0]}",
            hint="check --root",
        )
    return pairs


def _with_progress(console: Console | None, what: str) -> tuple[Progress | None, Callable[[int, int], None] | None]:
    if console is None:
        return None, None
    bar = Progress(console=console, transient=True)
    task = bar.add_task(what, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def run_redact_eval(root: Path, gt: Path, *, config: KuzetConfig, console: Console | None = None) -> dict[str, object]:
    """`kuzet eval redact`: every image redacted by the production path; share of faces hidden."""
    from kuzet.eval.wider import RedactionOutcome, evaluate_redaction, read_wider_gt
    from kuzet.governance.redaction import production_redactor

    images = read_wider_gt(gt)
    redactor = production_redactor(config.redaction)

    def redact(image: Image) -> RedactionOutcome:
        regions = redactor.redact_image(image).regions
        mask = np.zeros(image.shape[:2], bool)
        for x1, y1, x2, y2 in regions.tolist():
            mask[y1:y2, x1:x2] = True
        return RedactionOutcome(mask)

    bar, progress = _with_progress(console, "redacting")
    if bar is not None:
        with bar:
            return evaluate_redaction(root, images, redact, progress=progress)
    return evaluate_redaction(root, images, redact)


DETECTORS = ("centerface", "yunet", "dlib-hog", "recall-first")


def run_detect_eval(
    root: Path, gt: Path, *, config: KuzetConfig, detector: str | None = None, console: Console | None = None
) -> dict[str, object]:
    """`kuzet eval detect`: recall, AP at IoU 0.5, false positives per image and speed of one face detector.

    `detector`: a registered backend with its default settings, `recall-first` (what redaction uses), or None for
    the configured face detector (what recognition uses).
    """
    from kuzet.eval.wider import evaluate_detection, read_wider_gt

    images = read_wider_gt(gt)
    if detector is None:
        found = build_face_detector(config.face_detector)
    elif detector == "recall-first":
        from kuzet.detect.face.recall import RecallFaceFinder

        found = RecallFaceFinder(config.redaction)
    elif detector in DETECTORS:
        from pydantic import TypeAdapter

        from kuzet.config.models import FaceDetectorConfig

        found = build_face_detector(TypeAdapter(FaceDetectorConfig).validate_python({"type": detector}))
    else:
        raise InputError(f"no face detector {detector!r}", hint=f"use one of: {', '.join(DETECTORS)}")
    bar, progress = _with_progress(console, "detecting")
    if bar is not None:
        with bar:
            report = evaluate_detection(root, images, found.detect, progress=progress)
    else:
        report = evaluate_detection(root, images, found.detect)
    return {"detector": found.name, **report}
