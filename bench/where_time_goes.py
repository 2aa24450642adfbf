"""Where a camera worker's CPU goes: py-spy's samples of one worker, counted per pipeline stage.

    pip install py-spy
    py-spy record --pid WORKER_PID --duration 20 --rate 200 --format raw --nonblocking --threads -o worker.txt
    python bench/where_time_goes.py worker.txt

py-spy leaves idle threads out, so the samples are the busy ones of the worker's Python threads (the analysis and
the decoding threads; a model's extra onnxruntime threads are not sampled, so run the worker with one model thread
to see all of it, as it runs beside other cameras). Each sample is counted once, under the first stage (in the order
below) whose function is on its stack, so the wall picture's redaction is not counted again as face detection.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("wall picture (redaction)", ("_wall_picture",)),
    (
        "the main stream (demuxing, recording)",
        ("): record:", "MainStream", "RecordingKeeper", "recording.py", "_record_only", "_poll_main"),
    ),
    ("decoding the analysis stream", ("LiveStream._decode", "open_live")),
    ("motion gate", ("MotionGate",)),
    ("face search (YuNet)", ("any_face",)),
    ("face detection (CenterFace)", ("CenterFaceDetector.detect", "FaceAnalyzer._detect")),
    ("alignment", ("align",)),
    ("embedding", ("embed", "Embedder")),
    ("tracking", ("IoUTracker", "track/")),
    ("decisions and storage", ("_commit", "AnalysisSession.finish", "_keep", "snapshot", "ledger", "_decide")),
    ("gallery updates", ("gallery",)),
]
OTHER = "other (status, queues, Python)"


def shares(lines: list[str]) -> tuple[Counter[str], int]:
    """Samples per stage, and the total, from py-spy's raw lines (`frame;frame;... COUNT`)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        stage = next((name for name, keys in STAGES if any(k in stack for k in keys)), OTHER)
        counts[stage] += n
    return counts, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", type=Path, help="py-spy record --format raw output")
    args = parser.parse_args()
    counts, total = shares(args.samples.read_text().splitlines())
    print("| stage | share of busy samples |")
    print("|---|---|")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / max(total, 1):.1f}% |")
    print(f"({total} samples)")


if __name__ == "__main__":
    main()
