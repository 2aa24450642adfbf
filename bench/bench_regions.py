"""Face detection on moving regions against the whole frame: time and what is found, on the visible videos.

Each video is analysed by the face pipeline (`FaceAnalyzer`: motion gate, CenterFace, tracker, best shots, the
default embedder with an empty gallery) at 10 frames/s, once with `motion_gate.regions` off (every frame the gate
lets through is searched whole) and once on. Printed and written: CPU seconds of the analysis per analysed frame,
the frames searched only in their moving regions, faces detected, face tracks and tracks with a usable best shot.

Usage: python bench/bench_regions.py [-o bench/results/regions.json] [--fps 10]
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
from kuzet.detect.face import build_face_detector
from kuzet.ingest import open_source
from kuzet.pipeline.faces import FaceAnalyzer
from kuzet.recognize import build_face_embedder
from kuzet.recognize.gallery import NumpyGallery

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
VIDEOS = ("one-by-one-person-detection.mp4", "short_hamilton_clip.mp4")


def run(video: Path, *, regions: bool, fps: float) -> dict[str, Any]:
    """One analysis of `video`; its figures."""
    base = KuzetConfig()
    config = base.model_copy(update={"motion_gate": base.motion_gate.model_copy(update={"regions": regions})})
    analyzer = FaceAnalyzer(
        detector=build_face_detector(config.face_detector),
        embedder=build_face_embedder(config.face_embedder),
        gallery=NumpyGallery(np.zeros((0, 128), np.float32), np.zeros((0,), np.intp), []),
        people=[],
        config=config,
    )
    cpu = 0.0
    tracks = usable = 0
    with open_source(str(video), fps=fps) as source:
        for frame in source:
            t0 = time.process_time()
            decisions = analyzer.process(frame)
            cpu += time.process_time() - t0
            tracks += len(decisions)
            usable += sum(d.recognisable for d in decisions)
    t0 = time.process_time()
    decisions = analyzer.finish()
    cpu += time.process_time() - t0
    tracks += len(decisions)
    usable += sum(d.recognisable for d in decisions)
    stats = analyzer.stats
    return {
        "frames": stats.frames,
        "detector_frames": stats.frames - stats.gated_frames,
        "region_frames": stats.region_frames,
        "faces": stats.faces,
        "tracks": tracks,
        "recognisable_tracks": usable,
        "cpu_ms_per_frame": round(1000 * cpu / max(1, stats.frames), 2),
    }


def main() -> None:
    """Both settings on every video; print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/results/regions.json"))
    parser.add_argument("--fps", type=float, default=10.0)
    args = parser.parse_args()
    results: dict[str, Any] = {"fps": args.fps, "videos": {}}
    header = f"{'video':34} {'regions':8} {'ms/frame':>9} {'regions/searched':>17} {'faces':>6} {'tracks':>7}"
    print(f"{header} {'usable':>7}")
    for name in VIDEOS:
        per = {}
        for regions in (False, True):
            r = run(DATA / "video" / name, regions=regions, fps=args.fps)
            per["on" if regions else "off"] = r
            print(
                f"{name:34} {'on' if regions else 'off':8} {r['cpu_ms_per_frame']:9.1f} "
                f"{r['region_frames']:>8}/{r['detector_frames']:<8} {r['faces']:6} {r['tracks']:7} "
                f"{r['recognisable_tracks']:7}"
            )
        results["videos"][name] = per
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
