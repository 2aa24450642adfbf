"""Compare the face embedders (dlib's ResNet, SFace) and their score fusion on every visible pair set; refit the fusion.

Same detector (the configured one, CenterFace by default), one detection per image for both models, same pairs.
Per set: `kuzet eval pairs` figures (10-fold accuracy, AUC, EER, TAR at FAR) of each model and of the fusion on the
set's pairs (`pairs.csv`, else `kuzet eval make-pairs` from `labels.csv`, seed 0).

The fusion constants are fitted on every pair of every set's labelled images, all sets pooled (what
`kuzet eval calibrate` measures), never on one set; they are written to `src/kuzet/governance/fusion.json` with the
data they came from. Every rule `kuzet.recognize.fusion` knows is also checked leave-one-set-out (fitted on the
other sets, scored on the one left out), so a rule is not chosen for fitting the very pairs it is scored on.

Usage: python bench/compare_face_models.py [--rule anchored-mean] [--fusion-out src/kuzet/governance/fusion.json]
       [--baseline-out baselines/face_models.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kuzet.config import KuzetConfig
from kuzet.detect.face import build_face_detector
from kuzet.eval.calibrate import all_pairs, read_labels
from kuzet.eval.pairs import Pair, embed_images_with, make_pairs, pair_scores, read_pairs, verification_metrics
from kuzet.recognize import build_face_aligner, build_face_embedder, face_embedder_config
from kuzet.recognize.fusion import RULES, ScoreFusion, ScoreStats, fit_fusion

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETS = ("deepface_13id", "lfw_original_10id", "bbt_8id_gray")
MODELS = ("dlib-resnet", "sface")
ROOT = Path(__file__).resolve().parents[1]

Scores = dict[str, NDArray[np.float64]]


def protocol_pairs(root: Path, tmp: Path) -> tuple[list[Pair], str]:
    """The set's own pairs.csv, else every same pair plus as many sampled different pairs (seed 0)."""
    if (root / "pairs.csv").is_file():
        return read_pairs(root / "pairs.csv"), "pairs.csv"
    return make_pairs(root / "labels.csv"), "kuzet eval make-pairs (seed 0)"


def figures(scores: NDArray[np.float64], same: NDArray[np.bool_], n_missing: int) -> dict[str, object]:
    """`kuzet eval pairs` figures of pair scores."""
    m = verification_metrics(scores, same)
    return {
        "accuracy": m.accuracy,
        "accuracy_std": m.accuracy_std,
        "threshold": m.threshold,
        "tar_at_far": m.tar_at_far,
        "eer": m.eer,
        "auc": m.auc,
        "n_pairs": len(scores),
        "n_no_face": n_missing,
    }


def pooled_stats(sets: dict[str, tuple[Scores, NDArray[np.bool_]]]) -> dict[str, ScoreStats]:
    """Each model's genuine/impostor statistics over the given sets' all-pairs scores, pooled."""
    same = np.concatenate([s for _, s in sets.values()])
    return {m: ScoreStats.of(np.concatenate([sc[m] for sc, _ in sets.values()]), same) for m in MODELS}


def main() -> None:
    """Embed, score, fit, compare; write the fusion constants and the baseline."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rule", choices=RULES, default="anchored-mean", help="The fusion rule to ship.")
    parser.add_argument("--fusion-out", type=Path, default=ROOT / "src" / "kuzet" / "governance" / "fusion.json")
    parser.add_argument("--baseline-out", type=Path, default=ROOT / "baselines" / "face_models.json")
    parser.add_argument("--scores-out", type=Path, help="Also save every pair score here (.npz), for study.")
    args = parser.parse_args()
    config = KuzetConfig()
    detector = build_face_detector(config.face_detector)
    built = [(build_face_embedder(c), build_face_aligner(c)) for c in map(face_embedder_config, MODELS)]
    protocol: dict[str, tuple[Scores, NDArray[np.bool_], int, str]] = {}
    every: dict[str, tuple[Scores, NDArray[np.bool_]]] = {}
    data: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            root = DATA / "faces" / name
            labels_file = root / "labels.csv"
            pairs, source = protocol_pairs(root, Path(tmp))
            labelled = all_pairs(read_labels(labels_file))
            names = sorted({p.img1 for p in pairs + labelled} | {p.img2 for p in pairs + labelled})
            vectors = embed_images_with(
                root, names, detector=detector, models=built, max_pixels=config.ingest.max_pixels
            )
            p_scores, a_scores = {}, {}
            for model, per_image in zip(MODELS, vectors, strict=True):
                p_scores[model], p_same, missing = pair_scores(pairs, per_image)
                a_scores[model], a_same, _ = pair_scores(labelled, per_image)
            protocol[name] = (p_scores, p_same, missing, source)
            # Pairs with a face not found are left out of the fitting data (as `kuzet eval calibrate` does).
            ok = np.isfinite(a_scores[MODELS[0]])
            every[name] = ({m: s[ok] for m, s in a_scores.items()}, a_same[ok])
            data.append(
                {
                    "name": name,
                    "labels": labels_file.name,
                    "sha256": hashlib.sha256(labels_file.read_bytes()).hexdigest(),
                    "images": len(names),
                    "genuine_pairs": int(a_same[ok].sum()),
                    "impostor_pairs": int((~a_same[ok]).sum()),
                }
            )
            print(name, "embedded", len(names), "images", flush=True)

    if args.scores_out is not None:
        arrays: dict[str, NDArray[np.generic]] = {}
        for name in SETS:
            for model in MODELS:
                arrays[f"{name}/pairs/{model}"] = protocol[name][0][model]
                arrays[f"{name}/all/{model}"] = every[name][0][model]
            arrays[f"{name}/pairs/same"] = protocol[name][1]
            arrays[f"{name}/all/same"] = every[name][1]
        np.savez(args.scores_out, allow_pickle=False, **arrays)

    def scored(fusion: ScoreFusion, name: str) -> dict[str, object]:
        p_scores, p_same, missing, _ = protocol[name]
        return figures(fusion.fuse(p_scores), p_same, missing)

    stats = pooled_stats(every)
    rules: dict[str, dict[str, object]] = {}
    for rule in RULES:
        fusion = fit_fusion(stats, rule=rule)
        loso = {}
        for name in SETS:
            rest = {k: v for k, v in every.items() if k != name}
            loso[name] = scored(fit_fusion(pooled_stats(rest), rule=rule), name)["accuracy"]
        rules[rule] = {
            "constants": fusion.to_json()["models"],
            "accuracy": {name: scored(fusion, name)["accuracy"] for name in SETS},
            "leave_one_set_out_accuracy": loso,
        }
        print(rule, rules[rule]["accuracy"], "leave-one-set-out", loso, flush=True)
    chosen = fit_fusion(stats, rule=args.rule)
    per_set: dict[str, dict[str, object]] = {}
    for name in SETS:
        p_scores, p_same, missing, source = protocol[name]
        per_set[name] = {"pairs": source}
        for model in MODELS:
            per_set[name][model] = figures(p_scores[model], p_same, missing)
        per_set[name]["fusion"] = scored(chosen, name)
        line = " ".join(f"{k} {v['accuracy']:.4f}" for k, v in per_set[name].items() if isinstance(v, dict))
        print(name, line, flush=True)
    fitted = {
        "format": 1,
        **chosen.to_json(),
        "made_by": "bench/compare_face_models.py",
        "detector": config.face_detector.type,
        "fitted_on": "every pair of every set's labelled images, all sets pooled (faces not found left out)",
        "genuine_pairs": sum(int(d["genuine_pairs"]) for d in data),
        "impostor_pairs": sum(int(d["impostor_pairs"]) for d in data),
        "sets": data,
        "statistics": {
            m: {
                "genuine_mean": s.genuine_mean,
                "genuine_std": s.genuine_std,
                "impostor_mean": s.impostor_mean,
                "impostor_std": s.impostor_std,
                "d_prime": s.d_prime,
            }
            for m, s in stats.items()
        },
    }
    args.fusion_out.write_text(json.dumps(fitted, indent=2) + "\n")
    baseline = {
        "made_by": "bench/compare_face_models.py",
        "detector": config.face_detector.type,
        "models": list(MODELS),
        "rule": args.rule,
        "sets": per_set,
        "rules": rules,
    }
    args.baseline_out.write_text(json.dumps(baseline, indent=2) + "\n")
    print("wrote", args.fusion_out, "and", args.baseline_out)


if __name__ == "__main__":
    main()
