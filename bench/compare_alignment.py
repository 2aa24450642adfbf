"""Compare the two alignments of dlib's descriptor on every visible pair set: `landmarks` against `dlib5`.

Same detector (the configured one, CenterFace by default), same pairs, same embedder; only
`face_embedder.alignment` differs. For reference, the face_recognition library's own pipeline too (dlib HOG boxes,
upsampled once, then `dlib5`). Per set: `kuzet eval pairs` figures (10-fold accuracy, AUC, EER, TAR at FAR) on
the set's pairs (`pairs.csv`, else `kuzet eval make-pairs` from `labels.csv`), and the genuine/impostor separation
over every pair of the labelled images (what `kuzet eval calibrate` measures). Also the time each alignment takes
per face (alignment only; detection and the descriptor are the same for both).

Usage: python bench/compare_alignment.py [-o bench/results/alignment.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kuzet.config import KuzetConfig
from kuzet.config.models import DlibHogConfig
from kuzet.detect.face import build_face_detector
from kuzet.eval.calibrate import all_pairs, read_labels
from kuzet.eval.pairs import Pair, embed_images, make_pairs, pair_scores, pick_subject, verification_metrics
from kuzet.eval.runner import run_pairs
from kuzet.ingest import load_image
from kuzet.recognize import build_face_aligner, build_face_embedder

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETS = ("deepface_13id", "lfw_original_10id", "bbt_8id_gray")
ALIGNMENTS = ("landmarks", "dlib5")
REFERENCE = "face_recognition"
"""The face_recognition library's own pipeline for reference: dlib HOG (upsampled once) boxes, then `dlib5`."""


def pairs_file(root: Path, tmp: Path) -> Path:
    """The set's own pairs.csv, else every same pair plus as many sampled different pairs (seed 0)."""
    if (root / "pairs.csv").is_file():
        return root / "pairs.csv"
    out = tmp / f"{root.name}-pairs.csv"
    rows = make_pairs(root / "labels.csv")
    out.write_text("img1,img2,same\n" + "".join(f"{r.img1},{r.img2},{int(r.same)}\n" for r in rows))
    return out


def separation(root: Path, pairs: list[Pair], config: KuzetConfig) -> dict[str, float]:
    """Genuine and impostor cosine statistics over every pair of a labelled set."""
    names = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})
    vectors = embed_images(
        root,
        names,
        detector=build_face_detector(config.face_detector),
        embedder=build_face_embedder(config.face_embedder),
        aligner=build_face_aligner(config.face_embedder),
        max_pixels=config.ingest.max_pixels,
    )
    scores, same, _ = pair_scores(pairs, vectors)
    g, i = scores[same], scores[~same]
    m = verification_metrics(scores, same)
    return {
        "genuine_mean": float(g.mean()),
        "genuine_min": float(g.min()),
        "impostor_mean": float(i.mean()),
        "impostor_max": float(i.max()),
        "d_prime": float((g.mean() - i.mean()) / np.sqrt((g.var() + i.var()) / 2)),
        "eer": m.eer,
        "tar_at_far_0.001": m.tar_at_far["0.001"],
    }


def ms_per_face(config: KuzetConfig, sets: list[Path]) -> dict[str, float]:
    """Milliseconds each alignment takes per face (median of 3 runs over the subjects of the sets' images)."""
    detector = build_face_detector(config.face_detector)
    faces: list[tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.float32]]] = []
    for root in sets:
        for f in sorted(root.rglob("*")):
            if f.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
                continue
            img = load_image(f, max_pixels=config.ingest.max_pixels)
            dets = detector.detect(img)
            if len(dets) and dets.landmarks is not None:
                k = pick_subject(dets, img.shape[1], img.shape[0])
                faces.append((img, dets.boxes[k : k + 1], dets.landmarks[k : k + 1]))
    out = {"faces": float(len(faces))}
    for name in ALIGNMENTS:
        aligner = build_face_aligner(config.face_embedder.model_copy(update={"alignment": name}))
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            for img, boxes, lms in faces:
                aligner.align(img, boxes, lms)
            runs.append((time.perf_counter() - start) * 1000 / len(faces))
        out[name] = float(np.median(runs))
    return out


def main() -> None:
    """Run the comparison and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/results/alignment.json"))
    args = parser.parse_args()
    base = KuzetConfig()
    result: dict[str, object] = {"detector": base.face_detector.type, "embedder": base.face_embedder.type}
    per_set: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            root = DATA / "faces" / name
            per_set[name] = {}
            for alignment in (*ALIGNMENTS, REFERENCE):
                detector = DlibHogConfig() if alignment == REFERENCE else base.face_detector
                aligned = "dlib5" if alignment == REFERENCE else alignment
                cfg = base.model_copy(
                    update={
                        "face_detector": detector,
                        "face_embedder": base.face_embedder.model_copy(update={"alignment": aligned}),
                    }
                )
                report = run_pairs(root, pairs_file(root, Path(tmp)), config=cfg).to_json()
                report.pop("seconds")
                report["all_pairs"] = separation(root, all_pairs(read_labels(root / "labels.csv")), cfg)
                per_set[name][alignment] = report
                print(name, alignment, f"accuracy {report['accuracy']:.4f} auc {report['auc']:.5f}", flush=True)
    result["sets"] = per_set
    result["ms_per_face"] = ms_per_face(base, [DATA / "faces" / s for s in SETS])
    print("ms per face", result["ms_per_face"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
