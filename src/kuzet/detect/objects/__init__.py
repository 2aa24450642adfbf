"""Object detectors for traffic cameras: moving objects (default) and YOLO-family ONNX models a user supplies."""

from __future__ import annotations

from typing import Protocol

from kuzet.config.models import MotionDetectorConfig, YoloOnnxConfig
from kuzet.core.types import Detections, Image


class ObjectDetector(Protocol):
    """Finds objects (boxes, scores, class labels) in an RGB image."""

    name: str

    def detect(self, image: Image) -> Detections:
        """Objects in `image` (RGB, (H, W, 3) uint8), with `labels`, best score first."""
        ...


def build_object_detector(config: MotionDetectorConfig | YoloOnnxConfig) -> ObjectDetector:
    """The object detector a traffic config asks for (same `detect(image) -> Detections` protocol as faces)."""
    if isinstance(config, MotionDetectorConfig):
        from kuzet.detect.objects.motion import MotionDetector

        return MotionDetector(config)
    from kuzet.detect.objects.yolo_onnx import YoloOnnxDetector

    return YoloOnnxDetector(config)
