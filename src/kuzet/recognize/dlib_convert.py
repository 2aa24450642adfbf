"""Read dlib's ResNet face descriptor file and rebuild the same network for onnxruntime and PyTorch.

dlib stores a trained network as its own binary serialisation (see dlib/serialize.h and dlib/dnn/*.h): integers as
a control byte (low nibble: byte count, bit 7: sign) followed by little-endian bytes; strings as a length and their
bytes; tensors as a version, four dimensions and raw little-endian float32 values; each layer as its name
(`con_4`, `affine_`, `relu_`, `max_pool_2`, `avg_pool_2`, `add_prev_`, `fc_2`) and its fields. The network is
written outermost first, so layer details arrive from the input upwards. This module reads those details
into `DlibLayer`s, checks that they form the residual network of dlib's `dnn_face_recognition_ex.cpp`
(`dlib_face_recognition_resnet_model_v1.dat` in `face_recognition_models`), and writes an equivalent ONNX graph.

Every `affine_` (dlib's frozen batch norm) follows a convolution, so it is folded into that convolution's weights;
the input normalisation ((pixel - mean) / 256 per channel) is folded into the first convolution, which has no
padding, so the fold is exact. dlib's `add_prev_` adds tensors of different shapes by zero-padding the smaller one
at the end of each dimension (extra channels, bottom rows, right columns); both rebuilt networks do the same.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kuzet.core.errors import KuzetError
from kuzet.core.quantize import cache_dir

CONVERTER_VERSION = 1
"""Bumped whenever the produced graph changes, so cached conversions are rebuilt."""

_LAYER_NAMES = ("con_4", "con_5", "affine_", "relu_", "max_pool_2", "avg_pool_2", "add_prev_", "fc_2")
_NAME_RE = re.compile(rb"\x01([\x04-\x0c])(" + b"|".join(re.escape(n.encode()) for n in _LAYER_NAMES) + rb")")


class DlibModelError(KuzetError):
    """The dlib model file is not the face descriptor network this converter knows."""


@dataclass
class DlibLayer:
    """One layer's details as stored by dlib."""

    kind: str
    ints: tuple[int, ...] = ()
    params: NDArray[np.float32] | None = None
    shape: tuple[int, ...] = ()


@dataclass
class ResNetPlan:
    """The network, folded: a stem, residual blocks, a final linear layer."""

    input_mean: NDArray[np.float32]
    stem: tuple[NDArray[np.float32], NDArray[np.float32], int]
    stem_pool: tuple[int, int]
    blocks: list[Block] = field(default_factory=list)
    fc: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))


@dataclass
class Block:
    """conv(stride) -> relu -> conv -> (+ shortcut, avg-pooled when `down`) -> relu; batch norms folded."""

    w1: NDArray[np.float32]
    b1: NDArray[np.float32]
    stride: int
    pad1: int
    w2: NDArray[np.float32]
    b2: NDArray[np.float32]
    pad2: int
    down: bool


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def integer(self) -> int:
        ctrl = self.data[self.pos]
        size = ctrl & 0x0F
        if not 1 <= size <= 8:
            raise DlibModelError(f"bad integer at byte {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if ctrl & 0x80 else value

    def tensor(self) -> tuple[tuple[int, ...], NDArray[np.float32]]:
        version = self.integer()
        if version != 2:
            raise DlibModelError(f"unknown tensor version {version} at byte {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise DlibModelError("model file ends inside a tensor: it is truncated")
        values = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float32)
        self.pos = end
        return shape, values

    def next_layer_name(self) -> str | None:
        m = _NAME_RE.search(self.data, self.pos)
        while m is not None and m.group(1)[0] != len(m.group(2)):
            m = _NAME_RE.search(self.data, m.start() + 1)
        if m is None:
            return None
        self.pos = m.end()
        return m.group(2).decode()


def read_dlib_layers(data: bytes) -> tuple[NDArray[np.float32], list[DlibLayer]]:
    """The input layer's channel means (R, G, B) and the layers from the input upwards."""
    marker = b"\x01\x15input_rgb_image_sized"
    at = data.find(marker)
    if not data.startswith(b"\x01\x01\x01\x0dloss_metric_") or at < 0:
        raise DlibModelError("not a dlib metric-learning network on RGB images (loss_metric / input_rgb_image_sized)")
    r = _Reader(data)
    r.pos = at + len(marker)
    means = []
    for _ in range(3):  # dlib float: mantissa and exponent as integers
        mantissa = r.integer()
        exponent = r.integer()
        means.append(mantissa * 2.0**exponent)
    size = (r.integer(), r.integer())
    if size != (150, 150):
        raise DlibModelError(f"expected a 150x150 input layer, found {size}")
    layers: list[DlibLayer] = []
    while (name := r.next_layer_name()) is not None:
        if name.startswith("con_"):
            shape, params = r.tensor()
            ints = tuple(r.integer() for _ in range(7))  # filters, nr, nc, stride y, stride x, pad y, pad x
            layers.append(DlibLayer("con", ints, params, shape))
        elif name == "affine_":
            shape, params = r.tensor()
            layers.append(DlibLayer("affine", (), params, shape))
        elif name in ("max_pool_2", "avg_pool_2"):
            ints = tuple(r.integer() for _ in range(6))  # nr, nc, stride y, stride x, pad y, pad x
            layers.append(DlibLayer(name[:-2].replace("_pool", "pool"), ints))
        elif name == "fc_2":
            outputs, inputs = r.integer(), r.integer()
            shape, params = r.tensor()
            layers.append(DlibLayer("fc", (outputs, inputs), params, shape))
        else:
            layers.append(DlibLayer(name.rstrip("_")))
    return np.asarray(means, np.float32), layers


def _fold(con: DlibLayer, affine: DlibLayer) -> tuple[NDArray[np.float32], NDArray[np.float32], int, int]:
    """Convolution weights and bias with the following affine layer folded in; (w, b, stride, pad)."""
    n, nr, nc, sy, sx, py, px = con.ints
    assert con.params is not None
    assert affine.params is not None
    if sy != sx or py != px or nr != nc:
        raise DlibModelError("only square kernels, strides and paddings are supported")
    k = (con.params.size - n) // (n * nr * nc)
    w = con.params[: n * k * nr * nc].reshape(n, k, nr, nc)
    b = con.params[n * k * nr * nc :]
    if affine.params.size != 2 * n:
        raise DlibModelError(f"affine layer has {affine.params.size} values for {n} channels")
    gamma, beta = affine.params[:n], affine.params[n:]
    return (w * gamma[:, None, None, None]).astype(np.float32), (b * gamma + beta).astype(np.float32), sy, py


def plan_resnet(means: NDArray[np.float32], layers: list[DlibLayer]) -> ResNetPlan:
    """Check the layer sequence is dlib's face ResNet and fold it into a `ResNetPlan`."""
    kinds = [layer.kind for layer in layers]
    if kinds[:4] != ["con", "affine", "relu", "maxpool"]:
        raise DlibModelError(f"unexpected stem {kinds[:4]}")
    w, b, stride, pad = _fold(layers[0], layers[1])
    if pad != 0:
        raise DlibModelError("the first convolution must be unpadded to fold the input normalisation into it")
    # (x - mean) / 256 folded in: w' = w / 256, b' = b - sum(w' * mean)
    w = (w / 256.0).astype(np.float32)
    b = (b - np.einsum("nkrc,k->n", w, means)).astype(np.float32)
    mp = layers[3].ints
    if mp[0] != mp[1] or mp[2] != mp[3] or mp[4] or mp[5]:
        raise DlibModelError(f"unexpected max pool {mp}")
    plan = ResNetPlan(input_mean=means, stem=(w, b, stride), stem_pool=(mp[0], mp[2]))
    i = 4
    while i < len(layers) and kinds[i] == "con":
        if kinds[i : i + 5] != ["con", "affine", "relu", "con", "affine"]:
            raise DlibModelError(f"unexpected residual block {kinds[i : i + 5]} at layer {i}")
        w1, b1, s1, p1 = _fold(layers[i], layers[i + 1])
        w2, b2, s2, p2 = _fold(layers[i + 3], layers[i + 4])
        i += 5
        down = kinds[i] == "avgpool"
        if down:
            if layers[i].ints != (2, 2, 2, 2, 0, 0) or s1 != 2:
                raise DlibModelError(f"unexpected downsampling block at layer {i}")
            i += 1
        if kinds[i : i + 2] != ["add_prev", "relu"] or s2 != 1:
            raise DlibModelError(f"residual block ends unexpectedly at layer {i}")
        i += 2
        plan.blocks.append(Block(w1, b1, s1, p1, w2, b2, p2, down))
    if kinds[i:] != ["avgpool", "fc"] or layers[i].ints[:2] != (0, 0):
        raise DlibModelError(f"unexpected head {kinds[i:]}")
    fc = layers[i + 1]
    assert fc.params is not None
    outputs, inputs = fc.ints
    plan.fc = fc.params.reshape(inputs, outputs)
    return plan


def load_plan(path: Path) -> ResNetPlan:
    """Read and check a dlib face ResNet model file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DlibModelError(f"cannot read dlib model {path}: {e.strerror}") from e
    return plan_resnet(*read_dlib_layers(data))


def _out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def build_onnx(plan: ResNetPlan) -> bytes:
    """An ONNX graph: input `chips` (N, 150, 150, 3) float32 RGB 0-255, output `descriptors` (N, 128)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []
    counter = iter(range(10**6))

    def const(arr: NDArray[Any], stem: str) -> str:
        name = f"{stem}_{next(counter)}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{op.lower()}_{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(x: str, w: NDArray[np.float32], b: NDArray[np.float32], stride: int, pad: int) -> str:
        k = w.shape[2]
        return node(
            "Conv", [x, const(w, "w"), const(b, "b")], kernel_shape=[k, k], strides=[stride, stride],
            pads=[pad] * 4,
        )  # fmt: skip

    x = node("Transpose", ["chips"], perm=[0, 3, 1, 2])
    w, b, stride = plan.stem
    x = node("Relu", [conv(x, w, b, stride, 0)])
    size = _out_size(150, w.shape[2], stride, 0)
    k, s = plan.stem_pool
    x = node("MaxPool", [x], kernel_shape=[k, k], strides=[s, s])
    size = _out_size(size, k, s, 0)
    channels = w.shape[0]
    for blk in plan.blocks:
        y = node("Relu", [conv(x, blk.w1, blk.b1, blk.stride, blk.pad1)])
        y = conv(y, blk.w2, blk.b2, 1, blk.pad2)
        y_size = _out_size(_out_size(size, blk.w1.shape[2], blk.stride, blk.pad1), blk.w2.shape[2], 1, blk.pad2)
        if blk.down:
            x = node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
            size = _out_size(size, 2, 2, 0)
        y_channels = blk.w2.shape[0]
        out_size, out_channels = max(size, y_size), max(channels, y_channels)
        x = _pad_to(node, const, x, channels, size, out_channels, out_size)
        y = _pad_to(node, const, y, y_channels, y_size, out_channels, out_size)
        x = node("Relu", [node("Add", [x, y])])
        size, channels = out_size, out_channels
    x = node("Flatten", [node("GlobalAveragePool", [x])], axis=1)
    nodes.append(helper.make_node("MatMul", [x, const(plan.fc, "fc")], ["descriptors"]))
    graph = helper.make_graph(
        nodes,
        "dlib_face_resnet",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["N", 150, 150, 3])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", plan.fc.shape[1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kuzet")
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def _pad_to(node: Any, const: Any, x: str, channels: int, size: int, out_channels: int, out_size: int) -> str:
    """Zero-pad (N, C, H, W) at the end of C, H and W, as dlib's `add_prev_` does."""
    if channels == out_channels and size == out_size:
        return x
    pads = np.array([0, 0, 0, 0, 0, out_channels - channels, out_size - size, out_size - size], np.int64)
    result: str = node("Pad", [x, const(pads, "pads")], mode="constant")
    return result


def model_digest(path: Path) -> str:
    """sha256 of the dlib model file and the converter version: the cache key of a conversion."""
    h = hashlib.sha256(f"kuzet-dlib-convert-{CONVERTER_VERSION}".encode())
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def converted_onnx(source: Path, *, cache: Path | None = None) -> bytes:
    """The ONNX conversion of a dlib face ResNet file, from the cache or converted now and cached.

    The cache file is named by the source file's digest and the converter version, written atomically, and read
    back only if its own recorded digest matches; an unwritable cache still returns the converted bytes.
    """
    import logging
    import os
    import tempfile

    digest = model_digest(source)
    folder = (cache or cache_dir()) / "models"
    target = folder / f"dlib_resnet_{digest[:24]}.onnx"
    if target.is_file():
        data = target.read_bytes()
        if hashlib.sha256(data).hexdigest() == _read_sidecar(target):
            return data
    data = build_onnx(load_plan(source))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
        target.with_suffix(".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    except OSError as e:
        logging.getLogger(__name__).warning("could not cache the converted face model in %s: %s", folder, e.strerror)
    return data


def _read_sidecar(target: Path) -> str:
    try:
        return target.with_suffix(".sha256").read_text().strip()
    except OSError:
        return ""
