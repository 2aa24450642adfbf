"""Measure where the five face points fall in dlib's 150x150 face chip (the template in kuzet.recognize.align).

For each photo with one HOG face: dlib's own chip transform (from the 5-point predictor, padding 0.25) is rebuilt
as an affine map, checked against `dlib.get_face_chip`, and the 68-point predictor's eye centres, nose tip and
mouth corners are mapped through it. Prints the mean position of each point and its spread.

Usage: python bench/calibrate_alignment.py
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import dlib
import numpy as np

from kuzet.detect.face.dlib_hog import load_dlib_model
from kuzet.ingest import load_image

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _rotate(c: np.ndarray, p: np.ndarray, a: float) -> np.ndarray:
    d = p - c
    return c + np.array([np.cos(a) * d[0] - np.sin(a) * d[1], np.sin(a) * d[0] + np.cos(a) * d[1]])


def main() -> None:
    det = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(load_dlib_model("shape5"))
    sp68 = dlib.shape_predictor(load_dlib_model("shape68"))
    files = sorted((DATA / "faces" / "lfw_original_10id").rglob("*.jpg")) + sorted(
        (DATA / "faces" / "deepface_13id").glob("*.jpg")
    )
    points, diffs = [], []
    for f in files:
        img = load_image(f, max_pixels=10**8)
        if max(img.shape[:2]) > 1600:
            s = 1600 / max(img.shape[:2])
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        rects = det(img, 1)
        if len(rects) != 1:
            continue
        cd = dlib.get_face_chip_details(sp5(img, rects[0]), 150, 0.25)
        r = cd.rect
        c = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
        corners = [
            _rotate(c, np.array(p, float), cd.angle)
            for p in [(r.left(), r.top()), (r.right(), r.top()), (r.right(), r.bottom())]
        ]
        m = cv2.getAffineTransform(np.float32(corners), np.float32([[0, 0], [149, 0], [149, 149]]))
        diffs.append(
            np.abs(
                cv2.warpAffine(img, m, (150, 150)).astype(float)
                - dlib.get_face_chip(img, sp5(img, rects[0]), 150, 0.25)
            ).mean()
        )
        p = np.array([[q.x, q.y] for q in sp68(img, rects[0]).parts()], float)
        five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
        points.append(np.hstack([five, np.ones((5, 1))]) @ m.T)
    pts = np.array(points)
    print(f"{len(pts)} faces; rebuilt chip differs from dlib's by {np.mean(diffs):.2f} grey levels on average")
    print("template (x, y):\n", pts.mean(0).round(2))
    print("spread (std, px):\n", pts.std(0).round(2))


if __name__ == "__main__":
    main()
