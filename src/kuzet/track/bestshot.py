"""Best-shot choice: which views of a face are worth recognising."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.core.i18n import Phrase
from kuzet.core.types import FaceSample


def face_quality(
    chips: NDArray[np.uint8], boxes: NDArray[np.float32], landmarks: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Quality of each face view in [0, 1]: size x sharpness x frontal pose.

    Args:
        chips: Aligned chips, shape (N, S, S, 3) RGB uint8 (S = 150 for dlib's chip).
        boxes: Face boxes (x1, y1, x2, y2) in pixels, shape (N, 4).
        landmarks: Five points in pixels, shape (N, 5, 2).

    Returns:
        Scores, shape (N,) float32; 1 is a large, sharp, frontal face.

    """
    out: NDArray[np.float32] = (geometric_quality(boxes, landmarks) * sharpness(chips)).astype(np.float32)
    return out


def geometric_quality(boxes: NDArray[np.float32], landmarks: NDArray[np.float32]) -> NDArray[np.float32]:
    """Size x frontal pose in [0, 1], shape (N,): an upper bound of `face_quality` known before aligning."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.float32)
    size_term, pose_term = _size_and_pose(boxes, landmarks)
    out: NDArray[np.float32] = (size_term * pose_term).astype(np.float32)
    return out


def _size_and_pose(
    boxes: NDArray[np.float32], landmarks: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    size_term = np.clip(side / 100.0, 0.05, 1.0)
    eyes_mid = (landmarks[:, 0] + landmarks[:, 1]) / 2
    eye_dist = np.maximum(np.linalg.norm(landmarks[:, 1] - landmarks[:, 0], axis=1), 1e-3)
    # Yaw: how far the nose is from the line between the eyes' midpoint and the mouth's midpoint.
    mouth_mid = (landmarks[:, 3] + landmarks[:, 4]) / 2
    axis_x = (eyes_mid[:, 0] + mouth_mid[:, 0]) / 2
    yaw = np.abs(landmarks[:, 2, 0] - axis_x) / eye_dist
    pose_term = np.clip(1.0 - 1.5 * yaw, 0.05, 1.0)
    return size_term.astype(np.float32), pose_term.astype(np.float32)


@dataclass(frozen=True)
class FaceQuality:
    """One face view's quality and its parts, to say why a photo will not make a reliable template."""

    side: float
    """The face box's shorter side, pixels."""
    size: float
    pose: float
    sharpness: float
    brightness: float
    """Mean grey level of the aligned face's centre, 0-255."""

    @property
    def value(self) -> float:
        """Size x frontal pose x sharpness: the measure recognition gates tracks on (`recognition.min_quality`)."""
        return self.size * self.pose * self.sharpness

    def problems(self) -> list[str]:
        """What makes the view poor, in words: small, turned, dark, blurred."""
        out: list[str] = []
        if self.side < 40:
            out.append(Phrase("small ({side:.0f} px across)", side=self.side))
        if self.pose < 0.5:
            out.append(Phrase("turned away from the camera"))
        if self.brightness < 50:
            out.append(Phrase("dark"))
        if self.sharpness < 0.3:
            out.append(Phrase("blurred"))
        return out or [Phrase("of low quality")]


def view_quality(chip: NDArray[np.uint8], box: NDArray[np.float32], landmarks: NDArray[np.float32]) -> FaceQuality:
    """The quality of one face view (an aligned chip, its box and five points) with its parts."""
    size, pose = _size_and_pose(box[None], landmarks[None])
    sharp = sharpness(chip[None])
    a, b = _centre(chip.shape[0])
    grey = cv2.cvtColor(chip[a:b, a:b], cv2.COLOR_RGB2GRAY)
    side = float(min(box[2] - box[0], box[3] - box[1]))
    return FaceQuality(side, float(size[0]), float(pose[0]), float(sharp[0]), float(grey.mean()))


def _centre(side: int) -> tuple[int, int]:
    """The face's centre in a chip of `side` pixels: the middle 60% (30:120 of dlib's 150x150 chip)."""
    return round(side * 0.2), round(side * 0.8)


def sharpness(chips: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Sharpness term in [0.05, 1] of aligned chips (variance of the Laplacian of the face's centre), shape (N,).

    Measured on dlib's 150x150 chip; other chips (SFace's 112x112 ArcFace crop) use the same middle 60%, whose face
    is drawn at a similar scale (eye distance 35% of dlib's chip, 31% of the ArcFace crop).
    """
    n = chips.shape[0]
    sharp = np.empty(n, np.float32)
    a, b = _centre(chips.shape[1])
    for i in range(n):
        gray = cv2.cvtColor(chips[i, a:b, a:b], cv2.COLOR_RGB2GRAY)
        sharp[i] = cv2.Laplacian(gray, cv2.CV_32F).var()
    out: NDArray[np.float32] = np.clip(sharp / 150.0, 0.05, 1.0).astype(np.float32)
    return out


def keep_best(shots: list[FaceSample], sample: FaceSample, *, limit: int) -> None:
    """Insert `sample` into `shots` (best first) if it is among the `limit` best."""
    if len(shots) >= limit and sample.quality <= shots[-1].quality:
        return
    shots.append(sample)
    shots.sort(key=lambda s: -s.quality)
    del shots[limit:]
