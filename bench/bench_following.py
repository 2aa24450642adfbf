"""Tracked faces detected at the scale they need (`tracked_share`) against the full pass: cost and fidelity.

Two measurements on a video (default: the stage clip, where a face is tracked on almost every frame):

- The face pipeline (`FaceAnalyzer`, default config, empty gallery) at 10 frames/s with `tracked_share: 0` (every
  frame at the full pass's scale) and with the default: CPU ms per analysed frame, frames followed coarser, pixels
  through CenterFace, faces, tracks and tracks with a usable best shot.
- On every frame with faces, both passes on the same frame (the coarse one at the full pass's smallest face, as a
  track would ask): faces the coarse pass missed, its landmarks' distance from the full pass's (mean over the five
  points, share of the face's shorter side) and the cosine between the descriptors of the chips cut from each
  (frames whose faces are too small to go coarser are left out: they get the full pass).

Usage: python bench/bench_following.py [-o bench/results/following.json] [--share 0.5] [--video NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from kuzet.config import KuzetConfig
from kuzet.config.models import CenterFaceConfig
from kuzet.core.geometry import iou_matrix
from kuzet.core.types import Detections, Image
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.ingest import open_source
from kuzet.pipeline.faces import FaceAnalyzer
from kuzet.recognize import build_face_aligner, build_face_embedder
from kuzet.recognize.gallery import NumpyGallery

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class Counted(CenterFaceDetector):
    """CenterFace counting the pixels of every model input."""

    pixels = 0

    def _detect_small(self, small: Image) -> Detections:
        self.pixels += small.shape[0] * small.shape[1]
        return super()._detect_small(small)


def pipeline(video: Path, share: float, fps: float) -> dict[str, Any]:
    """One analysis of `video` with `tracked_share: share`; its figures."""
    config = KuzetConfig(face_detector=(centerface := CenterFaceConfig(tracked_share=share)))
    detector = Counted(centerface)
    empty = NumpyGallery(np.zeros((0, 128), np.float32), np.zeros((0,), np.intp), [])
    embedder = build_face_embedder(config.face_embedder)
    analyzer = FaceAnalyzer(detector=detector, embedder=embedder, gallery=empty, people=[], config=config)
    cpu, decisions = 0.0, []
    with open_source(str(video), fps=fps) as source:
        for frame in source:
            t0 = time.process_time()
            decisions += analyzer.process(frame)
            cpu += time.process_time() - t0
    decisions += analyzer.finish()
    stats = analyzer.stats
    return {
        "cpu_ms_per_frame": round(1000 * cpu / max(1, stats.frames), 1),
        "followed_frames": stats.followed_frames,
        "frames": stats.frames,
        "megapixels_detected": round(detector.pixels / 1e6, 2),
        "faces": stats.faces,
        "tracks": len(decisions),
        "recognisable_tracks": sum(d.recognisable for d in decisions),
    }


def fidelity(video: Path, share: float, fps: float) -> dict[str, Any]:
    """Both passes on every frame with faces: what the coarse one misses and how far its landmarks move."""
    detector = CenterFaceDetector(CenterFaceConfig(tracked_share=share))
    config = KuzetConfig()
    aligner, embedder = build_face_aligner(config.face_embedder), build_face_embedder(config.face_embedder)
    faces = missed = 0
    errors: list[float] = []
    cosines: list[float] = []
    with open_source(str(video), fps=fps) as source:
        for frame in source:
            full = detector.detect(frame.image)
            if not len(full):
                continue
            sides = np.minimum(full.boxes[:, 2] - full.boxes[:, 0], full.boxes[:, 3] - full.boxes[:, 1])
            coarse = detector.detect_following(frame.image, float(sides.min()))
            if coarse is None:
                continue  # faces too small to go coarser: the full pass runs, nothing to compare
            faces += len(full)
            ious = iou_matrix(full.boxes, coarse.boxes) if len(coarse) else np.zeros((len(full), 1), np.float32)
            for i, j in enumerate(ious.argmax(axis=1).tolist()):
                if ious[i, j] < 0.5:
                    missed += 1
                    continue
                assert full.landmarks is not None
                assert coarse.landmarks is not None
                marks = np.stack([full.landmarks[i], coarse.landmarks[j]])
                errors.append(float(np.linalg.norm(marks[0] - marks[1], axis=-1).mean() / sides[i]))
                d = embedder.embed(aligner.align(frame.image, np.stack([full.boxes[i], coarse.boxes[j]]), marks))
                cosines.append(float(d[0] @ d[1] / (np.linalg.norm(d[0]) * np.linalg.norm(d[1]))))
    err, cos = np.array(errors), np.array(cosines)
    return {
        "faces": faces,
        "missed_by_coarse": missed,
        "landmark_error_p50_p90_max": [round(float(v), 4) for v in np.percentile(err, [50, 90, 100])],
        "cosine_p50_p10_min": [round(float(v), 4) for v in np.percentile(cos, [50, 10, 0])],
    }


def main() -> None:
    """Print and write both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/results/following.json"))
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--video", default="short_hamilton_clip.mp4")
    args = parser.parse_args()
    video = DATA / "video" / args.video
    results: dict[str, Any] = {"video": args.video, "fps": args.fps, "share": args.share}
    for share in (0.0, args.share):
        results[f"pipeline_share_{share}"] = row = pipeline(video, share, args.fps)
        print(f"tracked_share {share}: {row}")
    results["fidelity"] = fid = fidelity(video, args.share, args.fps)
    print(f"coarse against full pass, same frames: {fid}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
