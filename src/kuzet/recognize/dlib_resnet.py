"""dlib's ResNet face descriptor (128-d, from `face_recognition_models`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import DlibResNetConfig
from kuzet.core.types import CHIP_SIZE
from kuzet.detect.face.dlib_hog import load_dlib_model


class DlibResNetEmbedder:
    """dlib ResNet-34-style descriptor on 150x150 chips; descriptors are returned L2-normalised."""

    name = "dlib-resnet"
    dim = 128
    runtime = "dlib"

    def __init__(self, config: DlibResNetConfig | None = None) -> None:
        import dlib

        self.config = config or DlibResNetConfig()
        self._model: Any = dlib.face_recognition_model_v1(load_dlib_model("resnet"))

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Descriptors, shape (N, 128) float32, unit length; chips (N, 150, 150, 3) RGB uint8."""
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}")
        n = chips.shape[0]
        out = np.empty((n, self.dim), np.float32)
        bs = self.config.batch_size
        for start in range(0, n, bs):
            batch = [np.ascontiguousarray(c) for c in chips[start : start + bs]]
            out[start : start + len(batch)] = np.asarray(self._model.compute_face_descriptor(batch), np.float32)
        return normalise(out)


def normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm (zero rows stay zero); (N, D) float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
