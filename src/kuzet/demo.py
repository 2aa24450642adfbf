"""`kuzet demo`: a self-contained run on images that installed packages ship (no network, no shared data).

scikit-image ships two public-domain portraits: the astronaut Eileen Collins (NASA) and "the cameraman". The demo
enrols the astronaut from her photo, writes a short H.264 clip in which a mirrored, resized copy of her walks
across a street photo next to the cameraman (a stranger), and analyses the clip like any other video.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

DEMO_PERSON = "Eileen Collins (astronaut)"


def _paste(canvas: NDArray[np.uint8], patch: NDArray[np.uint8], x: int, y: int) -> None:
    h, w = patch.shape[:2]
    canvas[y : y + h, x : x + w] = patch


def build_scene(folder: Path, *, frames: int = 48, fps: int = 12) -> tuple[Path, Path]:
    """Write the enrolment photo and the scene clip into `folder`; returns (photo, clip)."""
    import av
    from PIL import Image

    data: Any = importlib.import_module("skimage.data")

    folder.mkdir(parents=True, exist_ok=True)
    astronaut = np.asarray(data.astronaut(), dtype=np.uint8)
    photo = folder / "astronaut.png"
    Image.fromarray(astronaut).save(photo)

    # The scene: a mirrored, smaller, darker astronaut and the (grey) cameraman on a coffee-shop background.
    head = np.asarray(cv2.resize(np.ascontiguousarray(astronaut[20:260, 130:330, :][:, ::-1]), (150, 180)), np.uint8)
    head = np.clip(head.astype(np.int16) - 20, 0, 255).astype(np.uint8)
    cam = data.camera()[80:300, 150:310]
    stranger = np.asarray(cv2.resize(np.stack([cam] * 3, axis=-1), (128, 176)), np.uint8)
    background = np.asarray(cv2.resize(np.asarray(data.coffee(), np.uint8), (640, 480)), np.uint8)
    clip = folder / "scene.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            canvas = background.copy()
            _paste(canvas, stranger, 470, 260)
            _paste(canvas, head, 40 + i * 5, 120 + (i % 6))
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return photo, clip
