from __future__ import annotations

from pathlib import Path

import pytest

from kuzet.config import CenterFaceConfig, DlibHogConfig, load_config
from kuzet.core.errors import ConfigError


def test_defaults_without_file() -> None:
    cfg = load_config(None)
    assert isinstance(cfg.face_detector, CenterFaceConfig)
    assert 0.0 < cfg.recognition.threshold < 1.0


def test_backend_chosen_by_type(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("face_detector:\n  type: dlib-hog\n  upsample: 2\ncameras:\n  - name: gate-1\n    fps: 5\n")
    cfg = load_config(p)
    assert isinstance(cfg.face_detector, DlibHogConfig)
    assert cfg.face_detector.upsample == 2
    assert cfg.cameras[0].name == "gate-1"


def test_every_problem_is_explained(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(
        "face_detector:\n  type: yolo\nrecognition:\n  threshold: 3\n  typo_field: 1\ncameras:\n  - name: 'bad name!'\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = info.value.message
    assert "4 problem(s)" in msg
    assert "face_detector" in msg
    assert "recognition.threshold" in msg
    assert "recognition.typo_field" in msg
    assert "cameras.0.name" in msg


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("a: [1, 2\n", "not valid YAML"), ("- 1\n- 2\n", "mapping at the top level")],
)
def test_malformed_files(tmp_path: Path, text: str, fragment: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_backend_section_without_type_means_the_default_backend() -> None:
    from kuzet.config.models import KuzetConfig

    cfg = KuzetConfig.model_validate({"face_detector": {"min_face": 40}, "face_embedder": {"runtime": "dlib"}})
    assert cfg.face_detector.type == "centerface"
    assert cfg.face_detector.min_face == 40
    assert cfg.face_embedder.runtime == "dlib"
    assert KuzetConfig.model_validate({"face_detector": {"type": "dlib-hog"}}).face_detector.type == "dlib-hog"


@pytest.mark.parametrize("name", ["car-park.yaml", "live-cameras.yaml"])
def test_shipped_examples_validate(name: str) -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "examples" / name)
    assert config.cameras and all(c.name for c in config.cameras)
