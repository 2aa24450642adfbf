from __future__ import annotations

import json
import statistics
from pathlib import Path

import av
from typer.testing import CliRunner

from kuzet.bench import face_recognition_style
from kuzet.cli.main import app
from kuzet.ingest import open_source

runner = CliRunner()


def test_bench_writes_figures_for_every_runtime_and_gallery(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        ["bench", "--data", str(data_root), "-o", str(out), "--no-video", "--chips", "6", "--gallery-size", "2000"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    emb = report["embedders"]
    assert emb["chips"] == 6
    for runtime in ("dlib", "onnxruntime", "torch"):
        assert emb[runtime]["faces_per_s"] > 0
        assert emb[runtime]["min_cosine_to_dlib"] >= 0.9999
    assert emb["onnxruntime"]["faces_per_s"] > emb["dlib"]["faces_per_s"]
    assert emb["onnxruntime-int8"]["min_cosine_to_dlib"] >= 0.99
    row = report["gallery"]["2000"]
    assert row["templates"] == 2000
    assert row["exact"]["recall_at_1"] == 1.0
    assert 0.9 <= row["faiss_ivf"]["recall_at_1"] <= 1.0
    assert row["exact"]["p99_ms"] >= row["exact"]["p50_ms"] > 0
    assert "face descriptor" in result.output


def test_the_smallest_gallery_is_queried_once_per_template(tmp_path: Path, data_root: Path) -> None:
    """100 templates (the least --gallery-size takes) and 200 queries: each template is queried once."""
    out = tmp_path / "bench.json"
    args = ["bench", "--data", str(data_root), "-o", str(out), "--no-video", "--chips", "4", "--gallery-size", "100"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["gallery"]["100"]
    assert row["queries"] == 100
    assert row["exact"]["recall_at_1"] == 1.0


def test_rounds_interleave_every_way_and_report_medians(tmp_path: Path, data_root: Path) -> None:
    """--rounds 2 on one video: each config and the baseline run twice; fps and speedup are the rounds' medians."""
    out = tmp_path / "bench.json"
    args = ["bench", "--data", str(data_root), "-o", str(out), "--chips", "2", "--gallery-size", "100"]
    args += ["--video", "car-detection.mp4", "--baseline-frames", "4", "--rounds", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())["analyze"]["car-detection.mp4"]
    base = row["face_recognition_style"]["fps_rounds"]
    assert len(base) == 2 and row["face_recognition_style"]["fps"] == round(statistics.median(base), 2)
    for name in ("default", "tracked_full", "min_face_40", "no_motion_gate"):
        fps = row[name]["fps_rounds"]
        assert len(fps) == 2 and all(f > 0 for f in fps)
        # the rounds are kept to 2 decimals and the medians rounded to 1: equal within that rounding
        assert abs(row[name]["fps"] - statistics.median(fps)) <= 0.05 + 0.006
        ratios = [f / b for f, b in zip(fps, base, strict=True)]
        assert abs(row[name]["speedup"] - statistics.median(ratios)) <= 0.05 + 0.002
        assert row[name]["frames"] == 377
    assert row["default"]["gated_frames"] > 0 and row["no_motion_gate"]["gated_frames"] == 0


def test_the_face_recognition_way_runs_over_the_frames_kuzet_analyses(tmp_path: Path, video_dir: Path) -> None:
    """By default over the whole video (its opening can hold fewer faces than the rest); a cap stops it early."""
    clip = tmp_path / "stage.mp4"
    with av.open(str(clip), "w") as out, open_source(str(video_dir / "short_hamilton_clip.mp4")) as source:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.bit_rate = 640, 360, 20_000_000  # near lossless: HOG sees the faces
        for frame in source:
            if frame.index % 20 == 0:  # 14 frames from all over the clip: wide shots and close-ups
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.image, format="rgb24")))
        out.mux(stream.encode(None))
    whole, capped = face_recognition_style(clip), face_recognition_style(clip, 4)
    assert whole["frames"] == 14 and capped["frames"] == 4
    assert whole["faces"] > capped["faces"]  # measured: 7 faces in the 14 frames, 1 in the first 4


def test_bench_refuses_a_folder_without_the_data(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--data", str(tmp_path), "-o", str(tmp_path / "b.json")])
    assert result.exit_code == 2
    assert "--data" in result.output
    assert not (tmp_path / "b.json").exists()


def test_bench_names_a_missing_video(tmp_path: Path, data_root: Path) -> None:
    result = runner.invoke(app, ["bench", "--data", str(data_root), "--video", "nope.mp4"])
    assert result.exit_code == 2
    assert "nope.mp4" in result.output
