"""Runs evaluations with the configured models, with progress."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import InputError
from kuzet.detect.face import build_face_detector
from kuzet.eval.pairs import (
    PairsReport,
    embed_images,
    pair_scores,
    plot_det,
    read_pairs,
    verification_metrics,
)
from kuzet.recognize import build_face_embedder


def run_pairs(
    root: Path,
    pairs_csv: Path,
    *,
    config: KuzetConfig,
    plot: Path | None = None,
    console: Console | None = None,
) -> PairsReport:
    """Evaluate face verification on a pairs file with the configured detector and embedder."""
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
    detector = build_face_detector(config.face_detector)
    embedder = build_face_embedder(config.face_embedder)
    start = time.perf_counter()
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("embedding images", total=len(names))
        vectors = embed_images(
            root,
            names,
            detector=detector,
            embedder=embedder,
            max_pixels=config.ingest.max_pixels,
            on_image=lambda: progress.advance(task),
        )
    scores, same, n_missing = pair_scores(pairs, vectors)
    m = verification_metrics(scores, same)
    if plot is not None:
        plot_det(scores, same, plot, title=f"DET: {pairs_csv.name} ({embedder.name})")
    return PairsReport(
        accuracy=m.accuracy,
        accuracy_std=m.accuracy_std,
        threshold=m.threshold,
        tar_at_far=m.tar_at_far,
        eer=m.eer,
        auc=m.auc,
        n_pairs=len(pairs),
        n_no_face=n_missing,
        n_images=len(names),
        seconds=time.perf_counter() - start,
        embedder=embedder.name,
        detector=detector.name,
    )
