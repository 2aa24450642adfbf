"""Frames per second of `kuzet analyze` against a face_recognition-style per-frame loop, on the sample videos.

The baseline loop does what the face_recognition library does for every frame: dlib HOG detection (upsampled once),
5-point landmarks and the dlib ResNet descriptor for every face, compared with the gallery. kuzet detects with
CenterFace, tracks, and embeds only each track's best shots.

Usage: python bench/bench_analyze.py [--out bench/results/analyze.json] [--baseline-frames 60]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from kuzet.app import Kuzet
from kuzet.detect.face.dlib_hog import load_dlib_model
from kuzet.ingest import open_source

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
VIDEOS = ["short_hamilton_clip.mp4", "car-detection.mp4", "one-by-one-person-detection.mp4"]


def kuzet_fps(svc: Kuzet, video: Path) -> dict[str, float]:
    start = time.perf_counter()
    result = svc.analyze(str(video), camera="bench")
    seconds = time.perf_counter() - start
    return {
        "frames": result.stats.frames,
        "seconds": round(seconds, 2),
        "fps": round(result.stats.frames / seconds, 2),
        "faces": result.stats.faces,
        "tracks": result.stats.tracks,
        "embedded_shots": result.stats.embedded_shots,
        "events": len(result.events),
    }


def face_recognition_style_fps(video: Path, gallery: np.ndarray, max_frames: int) -> dict[str, float]:
    import dlib

    detector = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(load_dlib_model("shape5"))
    model = dlib.face_recognition_model_v1(load_dlib_model("resnet"))
    frames = faces = 0
    start = time.perf_counter()
    with open_source(str(video)) as src:
        for frame in src:
            rects = detector(frame.image, 1)
            for r in rects:
                d = np.asarray(model.compute_face_descriptor(frame.image, shape(frame.image, r)))
                np.linalg.norm(gallery - d, axis=1).min()
            faces += len(rects)
            frames += 1
            if frames >= max_frames:
                break
    seconds = time.perf_counter() - start
    return {"frames": frames, "seconds": round(seconds, 2), "fps": round(frames / seconds, 2), "faces": faces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/analyze.json"))
    parser.add_argument("--baseline-frames", type=int, default=60, help="frames per video for the slow loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        svc = Kuzet(Path(tmp))
        lin = DATA / "faces" / "face_recognition_examples" / "lin-manuel-miranda.png"
        svc.enroll("Lin-Manuel Miranda", [lin])
        svc.analyze(str(lin))  # warm-up: load both models before timing
        import dlib

        model = dlib.face_recognition_model_v1(load_dlib_model("resnet"))
        gallery = np.zeros((1, 128))
        results = {}
        for name in VIDEOS:
            video = DATA / "video" / name
            ours = kuzet_fps(svc, video)
            base = face_recognition_style_fps(video, gallery, args.baseline_frames)
            results[name] = {
                "kuzet": ours,
                "face_recognition_style": base,
                "speedup": round(ours["fps"] / base["fps"], 1),
            }
            print(
                f"{name:36s} kuzet {ours['fps']:7.1f} frames/s ({ours['frames']} frames) | "
                f"per-frame HOG+descriptor {base['fps']:6.2f} frames/s ({base['frames']} frames) | "
                f"x{results[name]['speedup']}"
            )
        del model
        svc.close()
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "videos": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
