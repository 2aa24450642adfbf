"""`kuzet bench`: face speed figures measured in one process on the same inputs.

- Embedders: faces/s of dlib's own descriptor and of the converted network on onnxruntime (fp32 and int8) and
  PyTorch, on chips aligned from the photos in faces/ (the same chips for every runtime), with the largest cosine
  gap to dlib.
- Analysis: frames/s of `kuzet analyze` (CenterFace, tracking, best shots, descriptor per track) on each video, and
  the face_recognition library's way on the same video: dlib HOG (upsampled once), 5 landmarks and the dlib
  descriptor for every face of every frame, over the same frames as kuzet (or only the first `baseline_frames`
  frames, quicker but not the same frames: a video's opening may hold fewer faces than the rest).
- Gallery: one-query latency p50/p99 and recall of the best person against exact search, for exact numpy search
  and the FAISS index, at several gallery sizes. Templates are synthetic but shaped like real ones: person centres
  drawn from the mean and covariance of the real descriptors of faces/, a few noisy templates per person.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import CenterFaceConfig, DlibResNetConfig, KuzetConfig, MotionGateConfig
from kuzet.core.quantize import int16_saturates
from kuzet.core.types import Identity
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.detect.face.dlib_hog import load_dlib_model
from kuzet.ingest import load_image, open_source
from kuzet.recognize.align import align_faces
from kuzet.recognize.dlib_resnet import normalise
from kuzet.recognize.gallery import IndexedGallery, NumpyGallery

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
BENCH_PASSWORD = "bench password 1234"


@dataclass
class BenchOptions:
    """What to measure."""

    data: Path
    max_chips: int = 96
    videos: list[str] = field(
        default_factory=lambda: ["short_hamilton_clip.mp4", "car-detection.mp4", "one-by-one-person-detection.mp4"]
    )
    baseline_frames: int = 0
    """Frames per video for the face_recognition way; 0: the whole video, the frames kuzet analyses."""
    rounds: int = 1
    """Times each video is analysed by each config and the face_recognition way, interleaved (medians reported)."""
    gallery_sizes: list[int] = field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    queries: int = 200
    runtimes: list[str] = field(default_factory=lambda: ["dlib", "onnxruntime", "onnxruntime-int8", "torch"])


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "int8_kernels_saturate": int16_saturates(),  # x86 without VNNI: int8 descriptor off by default
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def face_chips(faces_dir: Path, limit: int) -> NDArray[np.uint8]:
    """Aligned chips of the faces CenterFace finds in faces/ (sorted files, up to `limit` chips)."""
    detector = CenterFaceDetector()
    chips: list[NDArray[np.uint8]] = []
    for f in sorted(p for p in faces_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        img = load_image(f, max_pixels=10**8)
        dets = detector.detect(img)
        if len(dets) and dets.landmarks is not None:
            chips.extend(align_faces(img, dets.landmarks))
        if len(chips) >= limit:
            break
    return np.stack(chips[:limit])


def _rate(fn: Callable[[], object], items: int, *, min_seconds: float = 2.0) -> float:
    """Items per second of `fn` (after one warm-up call), repeated for at least `min_seconds`."""
    fn()
    runs, start = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return runs * items / elapsed


def bench_embedders(chips: NDArray[np.uint8], runtimes: list[str]) -> dict[str, Any]:
    """faces/s per runtime on the same chips, and each one's worst cosine to dlib's descriptors."""
    from kuzet.recognize import build_face_embedder

    out: dict[str, Any] = {"chips": len(chips)}
    reference: NDArray[np.float32] | None = None
    for runtime in runtimes:
        try:
            name, _, precision = runtime.partition("-")
            embedder = build_face_embedder(
                DlibResNetConfig.model_validate({"runtime": name, "precision": precision or "fp32", "batch_size": 32})
            )
        except Exception as exc:
            out[runtime] = {"error": str(exc)}
            continue
        vectors = embedder.embed(chips)
        if runtime == "dlib":
            reference = vectors
        row: dict[str, Any] = {
            "faces_per_s": round(_rate(partial(embedder.embed, chips), len(chips)), 1),
            "device": str(getattr(embedder, "device", "cpu")),
        }
        if reference is not None:
            row["min_cosine_to_dlib"] = round(float((vectors * reference).sum(1).min()), 6)
        out[runtime] = row
    base = out.get("dlib", {}).get("faces_per_s")
    for runtime in runtimes:
        row = out.get(runtime, {})
        if base and "faces_per_s" in row:
            row["speedup_vs_dlib"] = round(row["faces_per_s"] / base, 1)
    return out


def bench_analysis(data: Path, videos: list[str], baseline_frames: int, rounds: int = 1) -> dict[str, Any]:
    """Frames/s and CPU seconds of `kuzet analyze` per video, four configs, and of the face_recognition way.

    The configs: the default; every frame with open face tracks detected at full resolution (`tracked_share: 0`);
    `min_face: 40` (the smallest face HOG finds); the default without the motion gate. With `rounds` above 1, each
    round runs every config and the face_recognition way once more, one after the other, and the figures are the
    medians (a config's speedup: the median of its rounds' ratios to the same round's face_recognition way), so
    that a shared machine's slow minute does not decide the comparison.
    """
    with tempfile.TemporaryDirectory() as tmp:
        services = _bench_services(data, videos[0], Path(tmp))
        try:
            return {v: _video_rounds(services, data / "video" / v, baseline_frames, rounds) for v in videos}
        finally:
            for svc, _ in services.values():
                svc.close()


def _video_rounds(
    services: dict[str, tuple[Any, Any]], path: Path, baseline_frames: int, rounds: int
) -> dict[str, Any]:
    """One video's row: every config and the face_recognition way, `rounds` times, interleaved."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in [*services, "face_recognition_style"]}
    for _ in range(rounds):
        for name, (svc, admin) in services.items():
            runs[name].append(_timed_analysis(svc, admin, path))
        runs["face_recognition_style"].append(face_recognition_style(path, baseline_frames))
    return _medians(runs)


def _bench_services(data: Path, warm_video: str, tmp: Path) -> dict[str, tuple[Any, Any]]:
    """One warmed-up service per config, Lin-Manuel enrolled and approved."""
    from kuzet.services.container import build_services

    lin = data / "faces" / "face_recognition_examples" / "lin-manuel-miranda.png"
    variants = {
        "default": KuzetConfig(),
        "tracked_full": KuzetConfig(face_detector=CenterFaceConfig(tracked_share=0.0)),
        "min_face_40": KuzetConfig(face_detector=CenterFaceConfig(min_face=40)),
        "no_motion_gate": KuzetConfig(motion_gate=MotionGateConfig(enabled=False)),
    }
    services: dict[str, tuple[Any, Any]] = {}
    for name, cfg in variants.items():
        svc = build_services(tmp / name, cfg)
        admin = svc.users.init_admin("bench", BENCH_PASSWORD)
        approver = svc.users.add(admin, "bench-approver", BENCH_PASSWORD, ["approver"])
        enrolled = svc.gallery.enroll(admin, "Lin-Manuel Miranda", [lin], consent="bench (no real person's data kept)")
        svc.gallery.approve(approver, enrolled.identity.person_id, reason="benchmark")
        # warm-up, so that no timed run pays a one-time cost: both models loaded, and a few frames of video
        # tracked (the tracker's scipy import alone is 0.3-0.5 s, a tenth of the stage clip's run)
        svc.analysis.analyze(admin, str(lin))
        svc.analysis.analyze(admin, str(data / "video" / warm_video), camera="warm-up", fps=2)
        services[name] = (svc, admin)
    return services


def _timed_analysis(svc: Any, admin: Any, path: Path) -> dict[str, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    result = svc.analysis.analyze(admin, str(path), camera="bench")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "frames": result.stats.frames,
        "fps": result.stats.frames / seconds,
        "cpu_s": cpu,
        "gated_frames": result.stats.gated_frames,
        "searched_frames": result.stats.searched_frames,
        "followed_frames": result.stats.followed_frames,
        "faces": result.stats.faces,
        "tracks": result.stats.tracks,
        "embedded_shots": result.stats.embedded_shots,
        "matched": dict(result.stats.per_identity),
    }


def _medians(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One row per config: the last round's counts, median fps and CPU, and the median per-round speedup."""
    base = [r["fps"] for r in runs["face_recognition_style"]]
    row: dict[str, Any] = {}
    for name, rounds in runs.items():
        fps = [r["fps"] for r in rounds]
        row[name] = {**rounds[-1], "fps": round(float(np.median(fps)), 2 if name == "face_recognition_style" else 1)}
        if len(rounds) > 1:
            row[name]["fps_rounds"] = [round(f, 2) for f in fps]
        if "cpu_s" in rounds[-1]:
            row[name]["cpu_s"] = round(float(np.median([r["cpu_s"] for r in rounds])), 1)
        if name != "face_recognition_style":
            row[name]["speedup"] = round(float(np.median([f / b for f, b in zip(fps, base, strict=True)])), 1)
    return row


def face_recognition_style(video: Path, max_frames: int = 0) -> dict[str, Any]:
    """What the face_recognition library does per frame: HOG (upsample 1), 5 landmarks, descriptor per face.

    Over the whole video, or its first `max_frames` frames when that is above 0.
    """
    import dlib

    detector = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(load_dlib_model("shape5"))
    model = dlib.face_recognition_model_v1(load_dlib_model("resnet"))
    gallery = np.zeros((1, 128))
    frames = faces = 0
    start = time.perf_counter()
    with open_source(str(video)) as src:
        for frame in src:
            for r in detector(frame.image, 1):
                d = np.asarray(model.compute_face_descriptor(frame.image, shape(frame.image, r)))
                np.linalg.norm(gallery - d, axis=1).min()
                faces += 1
            frames += 1
            if frames == max_frames:
                break
    seconds = time.perf_counter() - start
    return {"frames": frames, "fps": round(frames / seconds, 2), "faces": faces}


def synthetic_templates(
    real: NDArray[np.float32], people: int, per_person: int, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    """Templates shaped like `real` descriptors: centres from their mean and covariance, noisy copies per person."""
    rng = np.random.default_rng(seed)
    mean = real.mean(axis=0)
    cov = np.cov(real, rowvar=False) + 1e-4 * np.eye(real.shape[1])
    chol = np.linalg.cholesky(cov).astype(np.float32)
    centres = normalise((mean + rng.standard_normal((people, real.shape[1]), np.float32) @ chol.T).astype(np.float32))
    owners = np.repeat(np.arange(people, dtype=np.intp), per_person)
    templates = np.empty((people * per_person, real.shape[1]), np.float32)
    step = 200_000
    for s in range(0, len(owners), step):  # in slices: the noise of a million templates at once is large
        o = owners[s : s + step]
        noise = rng.standard_normal((len(o), real.shape[1]), np.float32) @ (0.35 * chol.T)
        templates[s : s + step] = normalise((centres[o] + noise).astype(np.float32))
    return templates, owners


def bench_gallery(real: NDArray[np.float32], sizes: list[int], n_queries: int) -> dict[str, Any]:
    """Latency p50/p99 (ms, one query) and best-person recall against exact search, exact and indexed."""
    out: dict[str, Any] = {}
    rng = np.random.default_rng(1)
    for size in sizes:
        per_person = 4
        templates, owners = synthetic_templates(real, size // per_person, per_person, seed=size)
        people = [Identity(i, f"p{i}") for i in range(size // per_person)]
        # queries: new noisy views of enrolled people, at most one per template
        n = min(n_queries, len(templates))
        picked = rng.choice(len(templates), n, replace=False)
        queries = normalise(templates[picked] + rng.normal(0, 0.02, (n, templates.shape[1])).astype(np.float32))
        exact = NumpyGallery(templates, owners, people)
        start = time.perf_counter()
        indexed = IndexedGallery(templates, owners, people)
        build_s = time.perf_counter() - start
        truth = [int(exact.person_similarities(q[None]).argmax()) for q in queries]
        row: dict[str, Any] = {
            "templates": size,
            "people": len(people),
            "queries": n,
            "index_build_s": round(build_s, 1),
        }
        for name, gallery in (("exact", exact), ("faiss_ivf", indexed)):
            times, hits = [], 0
            for q, want in zip(queries, truth, strict=True):
                t = time.perf_counter()
                persons, sims = gallery.search(q[None])
                times.append((time.perf_counter() - t) * 1000)
                hits += int(persons[int(sims[0].argmax())] == want)
            row[name] = {
                "p50_ms": round(float(np.percentile(times, 50)), 3),
                "p99_ms": round(float(np.percentile(times, 99)), 3),
                "recall_at_1": round(hits / n, 4),
            }
        out[str(size)] = row
        del exact, indexed, templates
    return out


def run_bench(options: BenchOptions, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every figure, as a JSON-ready dict."""
    report: dict[str, Any] = {"machine": machine()}
    progress("aligning face chips")
    chips = face_chips(options.data / "faces", options.max_chips)
    progress(f"embedders on {len(chips)} chips")
    report["embedders"] = bench_embedders(chips, options.runtimes)
    if options.videos:
        progress("kuzet analyze and the face_recognition-style loop")
        report["analyze"] = bench_analysis(options.data, options.videos, options.baseline_frames, options.rounds)
    if options.gallery_sizes:
        progress("gallery search")
        from kuzet.recognize import build_face_embedder

        real = build_face_embedder(DlibResNetConfig(runtime="onnxruntime")).embed(chips)
        report["gallery"] = bench_gallery(real, options.gallery_sizes, options.queries)
    return report
