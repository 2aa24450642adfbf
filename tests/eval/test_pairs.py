from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kuzet.config import KuzetConfig
from kuzet.core.errors import InputError
from kuzet.eval.pairs import Pair, make_pairs, pair_scores, read_pairs, roc_points, verification_metrics
from kuzet.eval.runner import run_pairs

BASELINES = Path(__file__).resolve().parents[2] / "baselines" / "face_pairs.json"


def test_metrics_on_separable_scores() -> None:
    same = np.array([True] * 50 + [False] * 50)
    scores = np.r_[np.linspace(0.8, 1.0, 50), np.linspace(0.0, 0.7, 50)]
    m = verification_metrics(scores, same)
    assert m.accuracy == 1.0 and m.eer == 0.0 and m.auc == pytest.approx(1.0)
    assert m.tar_at_far["0.01"] == 1.0
    assert 0.7 <= m.threshold <= 0.8


def test_metrics_on_random_scores_are_near_chance() -> None:
    rng = np.random.default_rng(0)
    same = rng.random(2000) < 0.5
    m = verification_metrics(rng.random(2000), same)
    assert 0.4 < m.accuracy < 0.6
    assert 0.4 < m.auc < 0.6
    assert 0.4 < m.eer < 0.6


def test_roc_points_are_monotone() -> None:
    rng = np.random.default_rng(1)
    far, tar, _ = roc_points(rng.random(300), rng.random(300) < 0.3)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)
    assert far[-1] == 1.0 and tar[-1] == 1.0


def test_missing_faces_count_as_errors() -> None:
    v = np.ones(4, np.float32) / 2
    pairs = [Pair("a", "b", True), Pair("a", "x", True), Pair("a", "y", False)]
    scores, same, missing = pair_scores(pairs, {"a": v, "b": v, "x": None, "y": None})
    assert missing == 2
    m = verification_metrics(scores, same)
    assert m.accuracy < 1.0  # never dropped: both missing pairs are wrong whatever the threshold


def test_make_pairs_balanced_and_deterministic(faces_dir: Path) -> None:
    labels = faces_dir / "lfw_original_10id" / "labels.csv"
    a, b = make_pairs(labels), make_pairs(labels)
    assert a == b
    assert sum(p.same for p in a) == 450 and len(a) == 900


def test_make_pairs_on_a_small_set_stops_at_every_distinct_different_pair(tmp_path: Path) -> None:
    """Ten photos of one person and one of another: 45 same pairs, but only 20 different ones exist (it never ended).

    Run in a process of its own, so that the old endless loop fails the test instead of hanging the run.
    """
    labels = tmp_path / "labels.csv"
    labels.write_text("file,identity\n" + "".join(f"a{i}.jpg,ann\n" for i in range(10)) + "b0.jpg,bob\n")
    code = (
        "import sys; from pathlib import Path; from kuzet.eval.pairs import make_pairs; "
        "p = make_pairs(Path(sys.argv[1])); print(sum(x.same for x in p), sum(not x.same for x in p))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(labels)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["45", "20"]


def test_read_pairs_rejects_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("img1,img2,same\na.jpg,b.jpg,maybe\n")
    with pytest.raises(InputError, match="line 2"):
        read_pairs(p)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["deepface_13id", "lfw_original_10id"])
def test_accuracy_holds_committed_baseline(dataset: str, faces_dir: Path, tmp_path: Path) -> None:
    baseline = json.loads(BASELINES.read_text())[dataset]
    root = faces_dir / dataset
    pairs = root / "pairs.csv"
    if not pairs.exists():
        pairs = tmp_path / "pairs.csv"
        rows = make_pairs(root / "labels.csv")
        pairs.write_text("img1,img2,same\n" + "".join(f"{r.img1},{r.img2},{int(r.same)}\n" for r in rows))
    report = run_pairs(root, pairs, config=KuzetConfig())
    assert report.n_pairs == baseline["n_pairs"]
    assert report.n_no_face <= baseline["n_no_face"]
    assert report.accuracy >= baseline["accuracy"] - 0.005
    assert report.auc >= baseline["auc"] - 0.002
    assert report.tar_at_far["0.01"] >= baseline["tar_at_far"]["0.01"] - 0.01


ALIGNMENT = Path(__file__).resolve().parents[2] / "baselines" / "face_alignment.json"


def test_default_alignment_is_the_better_one_measured() -> None:
    """The committed comparison (bench/compare_alignment.py) backs the default: as good or better on every set."""
    comparison = json.loads(ALIGNMENT.read_text())
    default = KuzetConfig().face_embedder.alignment
    assert comparison["default"] == default
    other = next(a for a in ("landmarks", "dlib5") if a != default)
    for figures in comparison["sets"].values():
        assert figures[default]["accuracy"] >= figures[other]["accuracy"]
        assert figures[default]["auc"] >= figures[other]["auc"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["lfw_original_10id", "bbt_8id_gray"])
def test_dlib5_alignment_holds_committed_baseline(dataset: str, faces_dir: Path, tmp_path: Path) -> None:
    baseline = json.loads(ALIGNMENT.read_text())["sets"][dataset]["dlib5"]
    root = faces_dir / dataset
    pairs = tmp_path / "pairs.csv"
    rows = make_pairs(root / "labels.csv")
    pairs.write_text("img1,img2,same\n" + "".join(f"{r.img1},{r.img2},{int(r.same)}\n" for r in rows))
    config = KuzetConfig.model_validate({"face_embedder": {"alignment": "dlib5"}})
    report = run_pairs(root, pairs, config=config)
    assert report.n_pairs == baseline["n_pairs"]
    assert report.n_no_face <= baseline["n_no_face"]
    assert report.accuracy >= baseline["accuracy"] - 0.005
    assert report.auc >= baseline["auc"] - 0.002
