"""Static int8 quantisation of an ONNX model with onnxruntime, calibrated on sample photos, cached on disk.

A build takes an fp32 graph, runs it over calibration batches that the model's owner makes from photos (aligned
face chips for the descriptor, preprocessed frames for a detector), and writes a QDQ graph: int8 weights per output
channel, int8 activations with ranges from the calibration (min-max, or a percentile of the histogram).

The result is kept in kuzet's model cache as `<name>_int8_<model key>_<calibration key>.onnx`, with a JSON sidecar
holding its SHA-256, what it was built from and the accuracy checks of the build. The model key hashes the source
graph's bytes, the onnxruntime version, the settings and this module's version; the calibration key hashes the
calibration photos (names and contents). A later run with the photos at hand finds the exact file; a run without
them (a camera server after `kuzet models quantize`) takes the newest build with the same model key. Files are
written atomically and read back only if their recorded digest matches.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from kuzet.core.errors import ModelError

QUANTIZER_VERSION = 1
"""Bumped whenever a build would come out differently, so cached int8 models are rebuilt."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
"""Files taken as calibration photos."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantSettings:
    """How a model is quantised (part of the cache key)."""

    method: Literal["minmax", "percentile"] = "minmax"
    """Activation ranges: the calibration's min and max, or a percentile of its histogram (clips outliers)."""
    percentile: float = 99.999
    """The percentile kept by `percentile` calibration."""
    per_channel: bool = True
    """Weights get a scale per output channel (more accurate for convolutions with uneven channels)."""
    activations: Literal["int8", "uint8"] = "uint8"
    """Activation type: unsigned (QUInt8) or signed (QInt8) 8-bit integers. onnxruntime's x86 kernels without VNNI
    multiply uint8 activations by int8 weights fastest: signed activations measured slower than fp32 there."""
    reduce_range: bool = False
    """Weights in 7 bits (no int16 saturation in AVX2's multiply-add; costs some precision). `for_this_cpu` turns it
    on where the CPU needs it."""
    exclude: tuple[str, ...] = ()
    """Nodes kept in fp32 (by name), e.g. output heads whose precision matters most."""

    def key(self) -> str:
        """A stable text of the settings for the cache key."""
        return json.dumps(asdict(self), sort_keys=True)


X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
"""CPU flags (Linux's /proc/cpuinfo names) of x86 dot-product instructions that add uint8 x int8 products in int32."""


def int16_saturates(machine: str | None = None, flags: frozenset[str] | None = None) -> bool:
    """Whether onnxruntime's int8 kernels on this CPU may saturate: x86 without VNNI.

    There, uint8 activations times int8 weights are multiplied and added in pairs into int16 (`vpmaddubsw`), which
    overflows when both are large: on a 2-core AMD EPYC with AVX2 and no VNNI, the descriptor's lowest cosine to
    fp32 on the visible faces fell to 0.954 with 8-bit weights; with 7-bit weights (`reduce_range`) it is 0.997.
    VNNI (and Arm's dot products) add into int32 and keep all 8 bits. An x86 CPU whose flags cannot be read counts
    as saturating (7-bit weights are right everywhere, only a little less exact).
    """
    machine = (machine or platform.machine()).lower()
    if machine not in X86:
        return False
    return not (VNNI_FLAGS & (cpu_flags() if flags is None else flags))


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags from the first `flags` line of `/proc/cpuinfo` (or of `cpuinfo`); empty if none."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""  # not Linux: no flags, so an x86 CPU counts as saturating


def for_this_cpu(settings: QuantSettings) -> QuantSettings:
    """`settings` with 7-bit weights where this CPU's int8 kernels could saturate (`int16_saturates`)."""
    return replace(settings, reduce_range=settings.reduce_range or int16_saturates())


@dataclass(frozen=True)
class CalibrationPhotos:
    """The photos a build is calibrated on, and a digest of their names and contents."""

    folder: Path
    files: tuple[Path, ...]
    digest: str

    @property
    def key(self) -> str:
        """The calibration part of the cache file name."""
        return self.digest[:12]


@dataclass
class Int8Build:
    """An int8 model file and what is known about it (the sidecar's contents)."""

    path: Path
    data: bytes
    info: dict[str, Any] = field(default_factory=dict)
    built_now: bool = False


def default_photo_folder() -> Path | None:
    """`$KUZET_DATA/faces` (the visible sample photos) if it exists, else None."""
    env = os.environ.get("KUZET_DATA")
    if env and (Path(env) / "faces").is_dir():
        return Path(env) / "faces"
    return None


def calibration_photos(folder: Path) -> CalibrationPhotos:
    """Every photo under `folder` (recursively, sorted), with a digest of their relative names and bytes.

    Raises:
        ModelError: The folder does not exist or holds no photos.

    """
    if not folder.is_dir():
        raise ModelError(f"calibration folder {folder} does not exist", hint="give a folder of face photos")
    files = tuple(sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise ModelError(f"no photos (.jpg, .png, .webp) under {folder}", hint="give a folder of face photos")
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return CalibrationPhotos(folder, files, h.hexdigest())


def model_key(source: bytes, settings: QuantSettings) -> str:
    """The model part of the cache key: source graph, onnxruntime version, settings, this module's version."""
    import onnxruntime as ort

    h = hashlib.sha256(f"kuzet-int8-{QUANTIZER_VERSION}\0{ort.__version__}\0{settings.key()}\0".encode())
    h.update(source)
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where built models are kept: $KUZET_CACHE_DIR, else the user's cache directory."""
    import platformdirs

    env = os.environ.get("KUZET_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("kuzet", appauthor=False))


def _cache_folder(cache: Path | None) -> Path:
    return (cache or cache_dir()) / "models"


def _read_build(path: Path) -> Int8Build | None:
    """The build at `path` if its sidecar exists and its digest matches the file."""
    try:
        info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        data = path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    return Int8Build(path, data, info)


def cached_build(
    name: str, source: bytes, settings: QuantSettings, *, photos: CalibrationPhotos | None, cache: Path | None = None
) -> Int8Build | None:
    """A valid cached build: for these photos if given, else the newest for this source and settings.

    Without photos, a build with 7-bit weights serves where 8-bit ones were asked for and none is cached (right on
    every CPU: made where `for_this_cpu` asked for it, then moved to a CPU that does not need it).
    """
    folder = _cache_folder(cache)
    stem = f"{name}_int8_{model_key(source, settings)}"
    if photos is not None:
        return _read_build(folder / f"{stem}_{photos.key}.onnx")
    candidates = sorted(folder.glob(f"{stem}_*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        build = _read_build(path)
        if build is not None:
            return build
    if not settings.reduce_range:
        return cached_build(name, source, replace(settings, reduce_range=True), photos=None, cache=cache)
    return None


class _Batches:
    """An onnxruntime `CalibrationDataReader` that makes each batch only when it is asked for (low memory)."""

    def __init__(self, batches: Sequence[Callable[[], dict[str, NDArray[np.float32]]]]) -> None:
        self._batches = batches
        self._range = range(len(batches))
        self._it: Iterator[int] = iter(self._range)

    def __len__(self) -> int:
        return len(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._range = range(start_index, min(end_index, len(self._batches)))
        self._it = iter(self._range)

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        i = next(self._it, None)
        return None if i is None else self._batches[i]()


def quantize(
    source: bytes, batches: Sequence[Callable[[], dict[str, NDArray[np.float32]]]], settings: QuantSettings
) -> bytes:
    """The QDQ int8 graph of `source`, calibrated on `batches` (each a function returning one input feed).

    Batches are calibrated one at a time and their ranges merged (onnxruntime's `CalibStridedMinMax` with a stride
    of one), so memory stays that of one batch; `CalibMaxIntermediateOutputs` is not used (in onnxruntime 1.32
    it drops the outputs it collected without merging their ranges).
    """
    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not batches:
        raise ModelError("no calibration data", hint="give a folder of face photos")
    method = CalibrationMethod.MinMax if settings.method == "minmax" else CalibrationMethod.Percentile
    extra: dict[str, Any] = {"CalibStridedMinMax": 1}
    if settings.method == "percentile":
        extra["CalibPercentile"] = settings.percentile
    # onnxruntime logs a pre-processing suggestion with logging.warning(), which is not for our users and would
    # configure the root logger (basicConfig) as a side effect: a handler of our own for the duration stops both
    root = logging.getLogger()
    level = root.level
    quiet = logging.NullHandler()
    root.addHandler(quiet)
    root.setLevel(logging.ERROR)
    ort.set_default_logger_severity(3)  # the calibration session's notes on unused initialisers
    try:
        with tempfile.TemporaryDirectory(prefix="kuzet-int8-") as tmp:
            src = Path(tmp) / "model.onnx"
            out = Path(tmp) / "model.int8.onnx"
            model = onnx.load_from_string(source)
            if max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0) < 13:
                # per-channel DequantizeLinear (its `axis`) needs opset 13; CenterFace ships at opset 9
                model = version_converter.convert_version(model, 13)
            onnx.save(model, str(src))
            with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print per batch
                quantize_static(
                    src,
                    out,
                    _Batches(batches),
                    quant_format=QuantFormat.QDQ,
                    per_channel=settings.per_channel,
                    reduce_range=settings.reduce_range,
                    activation_type=QuantType.QInt8 if settings.activations == "int8" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(settings.exclude),
                    calibrate_method=method,
                    extra_options=extra,
                )
            model = onnx.load(str(out))
    finally:
        root.setLevel(level)
        root.removeHandler(quiet)
        ort.set_default_logger_severity(2)
    data: bytes = model.SerializeToString()
    return data


def build_int8(
    name: str,
    source: bytes,
    settings: QuantSettings,
    *,
    photos: CalibrationPhotos,
    batches: Callable[[], Sequence[Callable[[], dict[str, NDArray[np.float32]]]]],
    check: Callable[[bytes], dict[str, float]] | None = None,
    cache: Path | None = None,
    rebuild: bool = False,
) -> Int8Build:
    """The int8 model of `source` calibrated on `photos`: from the cache, or built now and cached atomically.

    Args:
        name: Model name, the start of the cache file's name (`dlib_resnet`, `centerface`).
        source: The fp32 ONNX graph.
        settings: How to quantise.
        photos: The calibration photos (their digest is part of the file name).
        batches: Makes the calibration feeds from the photos (called only when building).
        check: Measures the built model against fp32 (e.g. lowest cosine); recorded in the sidecar.
        cache: Cache root (default kuzet's cache directory).
        rebuild: Build even if a valid cached file exists.

    """
    if not rebuild:
        found = cached_build(name, source, settings, photos=photos, cache=cache)
        if found is not None:
            return found
    folder = _cache_folder(cache)
    target = folder / f"{name}_int8_{model_key(source, settings)}_{photos.key}.onnx"
    log.warning("building the int8 %s model, calibrated on %d photos in %s", name, len(photos.files), photos.folder)
    start = time.perf_counter()
    feeds = batches()
    data = quantize(source, feeds, settings)
    info: dict[str, Any] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "model": name,
        "settings": asdict(settings),
        "onnxruntime": _ort_version(),
        "calibration": {"folder": str(photos.folder), "photos": len(photos.files), "digest": photos.digest},
        "calibration_batches": len(feeds),
        "build_s": round(time.perf_counter() - start, 1),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if check is not None:
        info["checks"] = check(data)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, data)
        _write_atomic(target.with_suffix(".json"), (json.dumps(info, indent=2) + "\n").encode())
    except OSError as e:
        log.warning("could not cache the int8 %s model in %s: %s", name, folder, e.strerror)
    return Int8Build(target, data, info, built_now=True)


def _ort_version() -> str:
    import onnxruntime as ort

    return str(ort.__version__)


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


def cosines(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """Row-wise cosine similarity of two (N, D) arrays."""
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    result: NDArray[np.float32] = (num / np.maximum(den, 1e-12)).astype(np.float32)
    return result
