"""Object detectors: the YOLO ONNX backend on tiny models the test builds, and motion on a synthetic scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kuzet.config.models import MotionDetectorConfig, YoloOnnxConfig
from kuzet.core.errors import ModelError
from kuzet.detect.objects import build_object_detector
from kuzet.detect.objects.yolo_onnx import decode_yolo

NAMES = ["person", "car", "dog"]


def tiny_yolo(path: Path, rows: np.ndarray, *, size: int = 64, names: list[str] | None = None) -> Path:
    """A real ONNX model: input (1, 3, size, size); output = `rows` + 0 x mean(input) (so it runs the input)."""
    const = numpy_helper.from_array(rows.astype(np.float32), "rows")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["rows", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(rows.shape))],
        [const, numpy_helper.from_array(np.zeros((), np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names is not None:
        helper.set_model_props(model, {"names": str(dict(enumerate(names)))})
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def v8_rows(cands: list[tuple[float, float, float, float, int, float]]) -> np.ndarray:
    """(1, 4 + C, N) from (cx, cy, w, h, class, score) in input pixels."""
    out = np.zeros((1, 4 + len(NAMES), len(cands)), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(cands):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
    return out


def test_yolo_v8_layout_maps_boxes_back_filters_classes_and_suppresses(tmp_path: Path) -> None:
    cands = [
        (32, 32, 16, 16, 1, 0.9),  # car in the centre
        (33, 32, 16, 16, 1, 0.6),  # the same car again: suppressed
        (33, 32, 16, 16, 0, 0.8),  # a person at the same place: another class, kept
        (10, 10, 4, 4, 2, 0.95),  # a dog: not a wanted class
        (50, 50, 8, 8, 1, 0.1),  # too weak
    ]
    model = tiny_yolo(tmp_path / "v8.onnx", v8_rows(cands), names=NAMES)
    det = build_object_detector(YoloOnnxConfig(model=str(model), classes=["car", "person"]))
    image = np.zeros((100, 200, 3), np.uint8)  # letterboxed to 64x64: scale 0.32, 16 px bars top and bottom
    dets = det.detect(image)
    assert dets.labels is not None
    assert sorted(dets.labels.tolist()) == ["car", "person"]
    car = dets.boxes[dets.labels.tolist().index("car")]
    # centre (32, 32) in the 64x64 input is the image centre (100, 50); 16 px there is 50 px here
    assert np.allclose(car, [75, 25, 125, 75], atol=0.5)


def test_yolo_v5_layout_uses_objectness(tmp_path: Path) -> None:
    rows = np.zeros((1, 2, 5 + len(NAMES)), np.float32)
    rows[0, 0, :5] = (32, 32, 20, 20, 0.9)
    rows[0, 0, 5 + 1] = 0.9  # car, 0.81 with objectness
    rows[0, 1, :5] = (10, 10, 8, 8, 0.2)
    rows[0, 1, 5 + 0] = 0.9  # person, only 0.18 with objectness: dropped
    model = tiny_yolo(tmp_path / "v5.onnx", rows)
    det = build_object_detector(YoloOnnxConfig(model=str(model), names=NAMES, classes=[]))
    dets = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert dets.labels is not None
    assert dets.labels.tolist() == ["car"]
    assert dets.scores[0] == pytest.approx(0.81, abs=1e-5)


def test_yolo_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        build_object_detector(YoloOnnxConfig(model=str(tmp_path / "missing.onnx")))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        build_object_detector(YoloOnnxConfig(model=str(junk)))
    unnamed = tiny_yolo(tmp_path / "unnamed.onnx", v8_rows([(1, 1, 1, 1, 0, 0.5)]))
    with pytest.raises(ModelError, match="does not name its classes"):
        build_object_detector(YoloOnnxConfig(model=str(unnamed)))
    with pytest.raises(ModelError, match="not among the model's classes"):
        build_object_detector(YoloOnnxConfig(model=str(unnamed), names=NAMES, classes=["tram"]))
    with pytest.raises(ModelError, match="does not fit"):
        decode_yolo(np.zeros((1, 9, 9), np.float32), 3)


def test_motion_detector_finds_a_moving_block_and_not_the_background() -> None:
    det = build_object_detector(MotionDetectorConfig(width=320, history=50))
    rng = np.random.default_rng(0)
    background = rng.integers(60, 80, (240, 320, 3), dtype=np.uint8)
    car = rng.integers(120, 255, (40, 60, 3), dtype=np.uint8)  # a textured 60x40 "car"
    found = []
    for i in range(40):
        frame = background.copy()
        x = 20 + 6 * i
        frame[100:140, x : x + 60] = car  # moving right
        found.append(det.detect(frame))
    late = found[-1]
    assert len(late) == 1
    assert late.labels is not None
    assert late.labels[0] == "vehicle"
    x = 20 + 6 * 39
    assert np.allclose(late.boxes[0], [x, 100, x + 60, 140], atol=8)
    still = build_object_detector(MotionDetectorConfig(width=320, history=50))
    assert all(len(still.detect(background)) == 0 for _ in range(20))
