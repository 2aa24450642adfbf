"""WIDER FACE-format evaluation of detection and redaction, on the visible crowd photos (converted in the test)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kuzet.config.models import KuzetConfig
from kuzet.core.types import Detections
from kuzet.eval.runner import run_detect_eval, run_redact_eval
from kuzet.eval.wider import (
    GroundTruthImage,
    RedactionOutcome,
    covered_share,
    dlib_voc_as_wider,
    evaluate_detection,
    evaluate_redaction,
    read_wider_gt,
)

BASELINES = Path(__file__).resolve().parents[2] / "baselines" / "redaction.json"


def test_ground_truth_round_trips_and_subsets_are_read(tmp_path: Path, data_root: Path) -> None:
    gt = dlib_voc_as_wider(data_root, tmp_path / "set")
    images = read_wider_gt(gt)
    assert len(images) == 9 and sum(len(i.boxes) for i in images) == 43
    first = images[0]
    with (tmp_path / "set" / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "x", "y", "w", "h", "in_easy", "in_medium", "in_hard"])
        for i, (x1, y1, x2, y2) in enumerate(first.boxes.tolist()):
            w.writerow([first.file, x1, y1, x2 - x1, y2 - y1, int(i == 0), 1, 1])
    again = read_wider_gt(gt)
    assert again[0].subsets["easy"].tolist() == [True] + [False] * (len(first.boxes) - 1)
    assert not again[1].subsets["hard"].any()  # faces not listed are in no subset


def test_wider_parsing_ignores_invalid_faces_and_reads_empty_images(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("a/1.jpg\n2\n10 10 20 20 0 0 0 0 0 0\n40 40 8 8 2 0 0 1 0 0\nb/2.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    a, b = read_wider_gt(gt)
    assert a.valid.tolist() == [True, False] and a.boxes[0].tolist() == [10, 10, 30, 30]
    assert b.file == "b/2.jpg" and len(b.boxes) == 0
    gt.write_text("a/1.jpg\ntwo\n")
    with pytest.raises(Exception, match="number of faces"):
        read_wider_gt(gt)


def test_detection_metrics_on_a_known_answer(tmp_path: Path) -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), image)
    gt = [GroundTruthImage("x.png", np.asarray([[10, 10, 30, 30], [50, 50, 70, 70]], np.float32), np.ones(2, bool))]

    def detect(_: object) -> Detections:  # one hit, one miss, one false positive
        boxes = np.asarray([[11, 11, 31, 31], [80, 0, 95, 15]], np.float32)
        return Detections(boxes, np.asarray([0.9, 0.8], np.float32))

    report = evaluate_detection(tmp_path, gt, detect)
    assert report["recall"] == {"all": 0.5} and report["fp_per_image"] == 1.0
    assert report["ap"] == {"all": 0.5}  # recall 0.5 at precision 1, then only a false positive
    assert set(report) >= {"n_images", "n_faces", "recall", "ap", "fp_per_image", "ms_per_image"}


def test_blurring_everything_is_visible_in_the_figures(tmp_path: Path, data_root: Path) -> None:
    gt = dlib_voc_as_wider(data_root, tmp_path / "set", scale=0.5)
    everything = evaluate_redaction(
        tmp_path / "set", read_wider_gt(gt), lambda img: RedactionOutcome(np.ones(img.shape[:2], bool))
    )
    assert everything["hidden"]["all"] == 1.0 and everything["area_obscured"] == 1.0  # type: ignore[index]
    nothing = evaluate_redaction(
        tmp_path / "set", read_wider_gt(gt), lambda img: RedactionOutcome(np.zeros(img.shape[:2], bool))
    )
    assert nothing["hidden"]["all"] == 0.0 and len(nothing["missed"]) == 43  # type: ignore[index,arg-type]
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    assert covered_share(mask, np.asarray([[0, 0, 10, 10], [0, 0, 5, 5]], np.float32)).tolist() == [0.5, 1.0]


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25])
def test_redaction_hides_the_visible_crowd_faces(tmp_path: Path, data_root: Path, scale: float) -> None:
    """The production redaction path on the crowd photos at full, half and quarter size (faces 9 to 90 px wide)."""
    gt = dlib_voc_as_wider(data_root, tmp_path / "set", scale=scale)
    report = run_redact_eval(tmp_path / "set", gt, config=KuzetConfig())
    baseline = json.loads(BASELINES.read_text())[f"dlib_voc_faces@{scale}"]
    hidden = report["hidden"]
    assert isinstance(hidden, dict)
    for bucket, share in baseline["hidden"].items():
        if share is not None:
            assert hidden[bucket] is not None and hidden[bucket] >= share - 1e-9, (bucket, hidden[bucket], share)
    assert report["area_obscured"] <= baseline["area_obscured"] + 0.03  # not by hiding everything
    for bucket in ("20-29", "30-49", "50+"):
        if hidden[bucket] is not None:
            assert hidden[bucket] >= 0.99  # the goal: at least 99 % of faces of 20 px and more


@pytest.mark.slow
def test_detectors_are_compared_on_the_same_set(tmp_path: Path, data_root: Path) -> None:
    gt = dlib_voc_as_wider(data_root, tmp_path / "set")
    reports = {
        d: run_detect_eval(tmp_path / "set", gt, config=KuzetConfig(), detector=d) for d in ("centerface", "yunet")
    }
    for report in reports.values():
        recall = report["recall"]
        assert isinstance(recall, dict) and recall["all"] is not None and recall["all"] >= 0.95
