"""Speed and coverage of `kuzet redact` on 720p video: frames/s, the real-time factor, faces left findable.

Builds a 1280x720 clip by upscaling `video/car-detection.mp4` (cars with plates, 12.5 frames/s) and another at
30 frames/s from the Hamilton clip (faces), then redacts both as `kuzet redact` does (the video settings of the
`redaction` config). Coverage: on every fifth frame, the image path's face finder (at a 0.6 threshold) counts the faces
it finds in the original and in the redacted frame; a face it still finds after redaction was left visible.

Usage: python bench/bench_redact.py [--out bench/results/redact.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from kuzet.config.models import RedactionConfig
from kuzet.detect.face.recall import RecallFaceFinder
from kuzet.governance.redaction import production_redactor, redact_video

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def upscale(src: Path, out: Path, *, fps: float | None, frames: int) -> None:
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        vin = inp.streams.video[0]
        stream = dst.add_stream("libx264", rate=int(fps) if fps else vin.average_rate)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i, frame in enumerate(inp.decode(vin)):
            if i >= frames:
                break
            image = cv2.resize(frame.to_ndarray(format="rgb24"), (1280, 720), interpolation=cv2.INTER_LINEAR)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)


def faces_found(video: Path, finder: RecallFaceFinder, *, every: int = 5) -> int:
    """Faces the image path's finder finds on every `every`-th frame of a video."""
    found = 0
    with av.open(str(video)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i % every == 0:
                found += len(finder.detect(np.ascontiguousarray(frame.to_ndarray(format="rgb24"))))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/redact.json"))
    args = parser.parse_args()
    config = RedactionConfig()
    redactor = production_redactor(config, video=True)
    # The judge: the image path's finder, at a threshold where what it finds in a redacted frame is a face, not the
    # dark, blocky texture that a recall-first threshold also answers to.
    judge = RecallFaceFinder(RedactionConfig(score_threshold=0.6))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source, fps in [
            ("cars-720p-12.5fps", DATA / "video" / "car-detection.mp4", None),
            ("faces-720p-30fps", DATA / "video" / "short_hamilton_clip.mp4", 30.0),
        ]:
            clip = Path(tmp) / f"{name}.mp4"
            upscale(source, clip, fps=fps, frames=200)
            out = Path(tmp) / f"{name}-redacted.mp4"
            stats = redact_video(clip, out, redactor, face_every=config.video_every, hold_s=config.hold_s)
            before, after = faces_found(clip, judge), faces_found(out, judge)
            results[name] = {
                "frames": stats.frames,
                "seconds": round(stats.seconds, 2),
                "frames_per_s": round(stats.fps, 1),
                "realtime_factor": round(stats.realtime_factor, 2),
                "faces_found_before": before,
                "faces_found_after": after,
            }
            print(
                f"{name}: {stats.fps:.1f} frames/s, {stats.realtime_factor:.2f}x real time ({stats.frames} frames); "
                f"faces findable on every 5th frame: {before} before, {after} after redaction"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
