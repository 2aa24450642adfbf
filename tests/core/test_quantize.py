"""int8 models: built once from calibration photos, cached by digest, close to fp32, fp32 still selectable."""

from __future__ import annotations

import json
import logging
import platform
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from typer.testing import CliRunner

from kuzet.cli.main import app
from kuzet.config.models import CenterFaceConfig, DlibResNetConfig
from kuzet.core import quantize
from kuzet.core.errors import ModelError
from kuzet.core.quantize import QuantSettings, calibration_photos, cosines, for_this_cpu, int16_saturates
from kuzet.detect.face.centerface import CenterFaceDetector, centerface_int8
from kuzet.recognize import build_face_embedder, fast_resnet
from kuzet.recognize.fast_resnet import MIN_COSINE, OnnxResNetEmbedder, calibration_chips, descriptor_int8

runner = CliRunner()


@pytest.fixture(scope="module")
def few_photos(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    """Twelve small LFW photos: enough to calibrate on in a few seconds."""
    folder = tmp_path_factory.mktemp("photos")
    for f in sorted((faces_dir / "lfw_original_10id").rglob("*.jpg"))[::8][:12]:
        shutil.copy(f, folder / f.name)
    return folder


def test_int8_descriptor_is_cached_by_digest_and_reused(
    tmp_path: Path, few_photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = descriptor_int8(photos=few_photos, cache=tmp_path)
    assert first is not None
    assert first.built_now
    assert first.path.is_file()
    assert first.info["calibration"]["photos"] == 12
    assert first.info["checks"]["min_cosine"] >= 0.99
    again = descriptor_int8(photos=few_photos, cache=tmp_path)
    assert again is not None
    assert not again.built_now
    assert again.data == first.data
    # without photos at hand (a camera server), the newest build of this network is taken
    monkeypatch.delenv("KUZET_DATA", raising=False)
    cached = descriptor_int8(cache=tmp_path)
    assert cached is not None
    assert cached.path == first.path
    # other photos are another calibration: another file
    other = tmp_path / "other"
    shutil.copytree(few_photos, other)
    next(other.iterdir()).unlink()
    assert calibration_photos(other).key != calibration_photos(few_photos).key
    moved = descriptor_int8(photos=other, cache=tmp_path)
    assert moved is not None
    assert moved.path != first.path
    # a damaged file is not used, but rebuilt
    first.path.write_bytes(b"garbage")
    rebuilt = descriptor_int8(photos=few_photos, cache=tmp_path)
    assert rebuilt is not None
    assert rebuilt.built_now
    assert first.path.read_bytes() == rebuilt.data


def test_settings_are_part_of_the_key() -> None:
    from kuzet.core.quantize import model_key

    assert model_key(b"model", QuantSettings()) != model_key(b"model", QuantSettings(method="percentile"))
    assert model_key(b"model", QuantSettings()) != model_key(b"other", QuantSettings())


def test_weights_are_7_bit_where_the_cpu_could_saturate(
    tmp_path: Path, few_photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """x86 without VNNI adds uint8 x int8 pairs in int16: 8-bit weights overflowed there (lowest cosine 0.954)."""
    flags = quantize.cpu_flags()
    if platform.machine() in ("x86_64", "AMD64"):
        assert "sse2" in flags  # read from this machine's /proc/cpuinfo
    assert int16_saturates("x86_64", frozenset({"sse4_2", "avx2", "fma"}))
    assert not int16_saturates("x86_64", frozenset({"avx2", "avx512bw", "avx512_vnni"}))
    assert not int16_saturates("AMD64", frozenset({"avx2", "avx_vnni"}))
    assert int16_saturates("x86_64", frozenset())  # flags unknown: the safe choice
    assert not int16_saturates("aarch64", frozenset())  # Arm's dot products add in int32
    cpuinfo = "processor\t: 0\nvmx flags\t: ept vpid\nflags\t\t: fpu sse2 avx2\n\nprocessor\t: 1\nflags\t: fpu\n"
    assert quantize.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2"}  # the first `flags` line, not `vmx flags`
    assert quantize.cpu_flags("processor\t: 0\nFeatures\t: fp asimd asimddp\n") == set()  # Arm lists `Features`
    assert for_this_cpu(QuantSettings(reduce_range=True)).reduce_range  # never turned off where asked for
    monkeypatch.setattr(quantize, "int16_saturates", lambda: True)
    seven = descriptor_int8(photos=few_photos, cache=tmp_path)
    monkeypatch.setattr(quantize, "int16_saturates", lambda: False)
    eight = descriptor_int8(photos=few_photos, cache=tmp_path)
    assert seven is not None and eight is not None and seven.path != eight.path  # a build for each kind of CPU
    assert seven.info["settings"]["reduce_range"] and not eight.info["settings"]["reduce_range"]
    assert seven.info["checks"]["min_cosine"] >= MIN_COSINE
    eight.path.unlink()  # a 7-bit build made on another CPU serves one with VNNI, where no 8-bit one is cached
    monkeypatch.delenv("KUZET_DATA", raising=False)
    moved = descriptor_int8(cache=tmp_path)
    assert moved is not None and moved.path == seven.path


def test_auto_takes_an_int8_build_only_if_it_met_the_cosine_rule(
    tmp_path: Path, few_photos: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A build measured under 0.99 on its calibration faces (a CPU whose kernels lose precision) is not the default."""
    build = descriptor_int8(photos=few_photos, cache=tmp_path)
    assert build is not None and build.info["checks"]["min_cosine"] >= MIN_COSINE
    monkeypatch.delenv("KUZET_DATA", raising=False)  # no photos: the cached build is taken as it is
    monkeypatch.setenv("KUZET_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fast_resnet, "_int8_keeps_accuracy", lambda: True)  # a CPU where int8 may be the default
    assert _precision(DlibResNetConfig()) == "int8"
    sidecar = build.path.with_suffix(".json")
    info = json.loads(sidecar.read_text())
    info["checks"]["min_cosine"] = 0.954  # as measured with 8-bit weights on an AVX2 CPU without VNNI
    sidecar.write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING, logger="kuzet.recognize.fast_resnet"):
        assert _precision(DlibResNetConfig()) == "fp32"
    assert "reached only cosine 0.954" in caplog.text and "kuzet models quantize --photos DIR --rebuild" in caplog.text
    assert _precision(DlibResNetConfig(precision="int8")) == "int8"  # asked for by name: still given
    del info["checks"]
    sidecar.write_text(json.dumps(info))
    assert _precision(DlibResNetConfig()) == "fp32"  # no check recorded: not taken by default either


def test_int8_descriptor_stays_within_cosine_0_99_of_fp32_on_visible_faces(faces_dir: Path) -> None:
    files = sorted(p for p in faces_dir.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[::4]
    chips = calibration_chips(files)
    assert len(chips) >= 50
    fp32 = OnnxResNetEmbedder(DlibResNetConfig(precision="fp32"))
    int8 = OnnxResNetEmbedder(DlibResNetConfig(precision="int8"))
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    cos = cosines(fp32.embed(chips), int8.embed(chips))
    assert cos.min() >= 0.99, f"worst face {int(cos.argmin())}: {cos.min()}"
    # int8 in batches of any size gives the same descriptors
    one = OnnxResNetEmbedder(DlibResNetConfig(precision="int8", batch_size=1)).embed(chips[:5])
    assert np.allclose(one, int8.embed(chips[:5]), atol=1e-5)


def _precision(config: DlibResNetConfig) -> str:
    """The precision the embedder built from `config` runs at (onnxruntime's, the CPU default here)."""
    embedder = build_face_embedder(config)
    assert isinstance(embedder, OnnxResNetEmbedder)
    return embedder.precision


def test_default_is_int8_on_a_cpu_with_photos_and_fp32_without(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUZET_DATA", str(data_root))
    monkeypatch.setattr(quantize, "int16_saturates", lambda: False)  # a CPU with VNNI (or Arm)
    assert fast_resnet._int8_keeps_accuracy()
    monkeypatch.setattr(quantize, "int16_saturates", lambda: True)  # x86 without VNNI: int8 loses pairs there
    assert not fast_resnet._int8_keeps_accuracy()
    monkeypatch.undo()
    monkeypatch.setenv("KUZET_DATA", str(data_root))
    monkeypatch.setattr(fast_resnet, "_int8_keeps_accuracy", lambda: True)
    assert _precision(DlibResNetConfig()) == "int8"
    assert _precision(DlibResNetConfig(precision="fp32")) == "fp32"
    monkeypatch.setattr(fast_resnet, "_int8_keeps_accuracy", lambda: False)
    assert _precision(DlibResNetConfig()) == "fp32"
    assert _precision(DlibResNetConfig(precision="int8")) == "int8"  # still there when asked for by name
    monkeypatch.undo()
    monkeypatch.delenv("KUZET_DATA", raising=False)
    monkeypatch.setenv("KUZET_CACHE_DIR", str(tmp_path))  # nothing cached, no photos
    assert _precision(DlibResNetConfig()) == "fp32"
    with pytest.raises(ModelError, match="no int8 build is cached") as err:
        build_face_embedder(DlibResNetConfig(precision="int8"))
    assert "kuzet models quantize" in err.value.hint
    with pytest.raises(ModelError, match="no int8 build is cached"):
        CenterFaceDetector(CenterFaceConfig(precision="int8"))


def test_int8_on_a_runtime_without_it_is_a_clear_error() -> None:
    runtimes: tuple[Literal["torch", "dlib"], ...] = ("torch", "dlib")
    for runtime in runtimes:
        with pytest.raises(ModelError, match="int8 runs on onnxruntime only") as err:
            build_face_embedder(DlibResNetConfig(runtime=runtime, precision="int8"))
        assert "precision: auto or fp32" in err.value.hint


def test_int8_centerface_finds_the_faces_fp32_finds(tmp_path: Path, few_photos: Path) -> None:
    build = centerface_int8(photos=few_photos, cache=tmp_path)
    assert build.info["checks"]["found_by_int8"] >= 0.9
    fp32 = CenterFaceDetector(CenterFaceConfig())
    int8 = CenterFaceDetector(CenterFaceConfig(precision="int8"), model=build.data)
    assert fp32.precision == "fp32"
    from kuzet.ingest import load_image

    for f in sorted(few_photos.iterdir())[:4]:
        image = load_image(f, max_pixels=10**8)
        assert len(int8.detect(image)) == len(fp32.detect(image))


def test_models_quantize_command(tmp_path: Path, few_photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUZET_CACHE_DIR", str(tmp_path))
    result = runner.invoke(app, ["models", "quantize", "--photos", str(few_photos), "--model", "descriptor"])
    assert result.exit_code == 0, result.output
    assert "built in" in result.output
    assert "min_cosine" in result.output
    assert ("x86 without VNNI" in result.output) == quantize.int16_saturates()
    assert len(list((tmp_path / "models").glob("dlib_resnet_int8_*.onnx"))) == 1
    result = runner.invoke(app, ["models", "quantize", "--photos", str(few_photos), "--model", "descriptor"])
    assert result.exit_code == 0, result.output
    assert "cached" in result.output
    monkeypatch.delenv("KUZET_DATA", raising=False)
    result = runner.invoke(app, ["models", "quantize"])
    assert result.exit_code == 2
    assert "--photos" in result.output
    result = runner.invoke(app, ["models", "quantize", "--photos", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
