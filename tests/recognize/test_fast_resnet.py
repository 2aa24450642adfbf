"""The converted dlib face network (onnxruntime, PyTorch) against dlib itself, on every face of the shared data."""

from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest
from numpy.typing import NDArray

from kuzet.config.models import DlibResNetConfig
from kuzet.core.types import CHIP_SIZE
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.detect.face.dlib_hog import load_dlib_model
from kuzet.ingest import load_image
from kuzet.recognize import build_face_embedder
from kuzet.recognize.align import align_faces
from kuzet.recognize.dlib_convert import (
    DlibModelError,
    build_onnx,
    converted_onnx,
    load_plan,
    read_dlib_layers,
)
from kuzet.recognize.fast_resnet import OnnxResNetEmbedder, TorchResNetEmbedder

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@pytest.fixture(scope="module")
def all_chips(faces_dir: Path, centerface: CenterFaceDetector) -> NDArray[np.uint8]:
    """A chip for every face CenterFace finds in every photo of faces/; a tight crop with none found is one chip."""
    chips = []
    files = sorted(p for p in faces_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    assert len(files) > 200
    for f in files:
        img = load_image(f, max_pixels=10**8)
        dets = centerface.detect(img)
        if len(dets) and dets.landmarks is not None:
            chips.append(align_faces(img, dets.landmarks))
        else:
            chips.append(cv2.resize(img, (CHIP_SIZE, CHIP_SIZE), interpolation=cv2.INTER_AREA)[None])
    return np.concatenate(chips)


@pytest.fixture(scope="module")
def dlib_reference(all_chips: NDArray[np.uint8]) -> NDArray[np.float32]:
    """dlib.face_recognition_model_v1.compute_face_descriptor on every chip."""
    model = dlib.face_recognition_model_v1(load_dlib_model("resnet"))
    batch = [np.ascontiguousarray(c) for c in all_chips]
    return np.asarray(model.compute_face_descriptor(batch), np.float32)


def _cosines(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_onnx_embedder_reproduces_dlib_on_every_face(
    all_chips: NDArray[np.uint8], dlib_reference: NDArray[np.float32]
) -> None:
    assert len(all_chips) >= 250
    ours = OnnxResNetEmbedder(DlibResNetConfig(batch_size=32, precision="fp32")).embed(all_chips)
    cos = _cosines(ours, dlib_reference)
    assert cos.min() >= 0.9999, f"worst face {int(cos.argmin())}: {cos.min()}"


def test_torch_embedder_reproduces_dlib_on_every_face(
    all_chips: NDArray[np.uint8], dlib_reference: NDArray[np.float32]
) -> None:
    embedder = TorchResNetEmbedder(DlibResNetConfig(runtime="torch", device="cpu", batch_size=32))
    assert embedder.device.type == "cpu"
    cos = _cosines(embedder.embed(all_chips), dlib_reference)
    assert cos.min() >= 0.9999, f"worst face {int(cos.argmin())}: {cos.min()}"


def test_batches_of_any_size_give_the_same_descriptors(all_chips: NDArray[np.uint8]) -> None:
    one = OnnxResNetEmbedder(DlibResNetConfig(batch_size=1, precision="fp32")).embed(all_chips[:5])
    many = OnnxResNetEmbedder(DlibResNetConfig(batch_size=4, precision="fp32")).embed(all_chips[:5])
    assert np.allclose(one, many, atol=1e-5)
    assert OnnxResNetEmbedder().embed(np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(ValueError, match="chips must be"):
        OnnxResNetEmbedder().embed(np.zeros((1, 112, 112, 3), np.uint8))


def test_default_embedder_is_the_fast_one_on_a_cpu() -> None:
    embedder = build_face_embedder(DlibResNetConfig())
    assert embedder.runtime == "onnxruntime"
    assert embedder.name == "dlib-resnet"  # same descriptor space as dlib's own: enrolled templates stay valid
    assert build_face_embedder(DlibResNetConfig(runtime="dlib")).runtime == "dlib"


def test_conversion_is_cached_and_a_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    source = Path(load_dlib_model("resnet"))
    first = converted_onnx(source, cache=tmp_path)
    cached = list((tmp_path / "models").glob("*.onnx"))
    assert len(cached) == 1
    assert cached[0].read_bytes() == first
    cached[0].write_bytes(b"garbage")
    again = converted_onnx(source, cache=tmp_path)
    assert again == first
    assert cached[0].read_bytes() == first


def test_read_only_cache_still_converts(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert (
        converted_onnx(Path(load_dlib_model("resnet")), cache=blocker)[:2]
        == build_onnx(load_plan(Path(load_dlib_model("resnet"))))[:2]
    )


def test_other_files_are_refused_clearly(tmp_path: Path) -> None:
    data = Path(load_dlib_model("resnet")).read_bytes()
    with pytest.raises(DlibModelError, match="not a dlib metric-learning network"):
        read_dlib_layers(b"\x00" * 100)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibModelError):
        load_plan(truncated)
    shape_model = Path(load_dlib_model("shape5"))
    with pytest.raises(DlibModelError):
        load_plan(shape_model)
    with pytest.raises(DlibModelError, match="cannot read"):
        load_plan(tmp_path / "missing.dat")


def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error() -> None:
    from kuzet.core.accel import ort_providers
    from kuzet.core.errors import ModelError
    from kuzet.recognize.fast_resnet import cuda_available

    if cuda_available():
        assert TorchResNetEmbedder(DlibResNetConfig(runtime="torch", device="cuda")).device.type == "cuda"
        return
    with pytest.raises(ModelError, match="cuda"):
        TorchResNetEmbedder(DlibResNetConfig(runtime="torch", device="cuda"))
    assert ort_providers("auto")[-1] == "CPUExecutionProvider"
    assert ort_providers("cpu") == ["CPUExecutionProvider"]
