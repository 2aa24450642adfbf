"""Checks and measurements: `kuzet config`, `kuzet eval` and `kuzet bench`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from kuzet.cli import common
from kuzet.cli.common import console, err_console, given_config, writable, write_json
from kuzet.config.loading import load_config
from kuzet.core.errors import ConfigError, InputError

if TYPE_CHECKING:
    from kuzet.eval.pairs import PairsReport
    from kuzet.governance.policy import Policy

eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="YAML config file to validate.")]) -> None:
    """Validate a config file and explain every problem, as `kuzet run` would (cameras need a lawful purpose)."""
    from kuzet.governance.policy import load_policy
    from kuzet.ingest.sources import NETWORK_SCHEMES
    from kuzet.services.cameras import purpose_problems

    cfg = load_config(file)
    live = [c for c in cfg.cameras if c.enabled and c.source.startswith(NETWORK_SCHEMES)]  # what `kuzet run` starts
    policy_file = common.data_dir() / "policy.yaml"
    if cfg.face_fusion is not None:
        from kuzet.services.context import Models

        _ = Models(cfg).face_fusion  # the constants must fuse exactly these models
    policy = load_policy(
        policy_file if policy_file.is_file() else None, calibration=_calibration_file(), matcher=cfg.face_matcher
    )
    policy.check_embedder(cfg.face_matcher)
    refused = purpose_problems(live, policy)
    if refused is not None:
        name, reason = refused
        raise ConfigError(f"camera {name}: {reason}", hint="state a lawful purpose; see docs/governance.md")
    console.print(
        f"{file}: OK (face detector {cfg.face_detector.type}, face matcher {cfg.face_matcher}, "
        f"threshold {cfg.match_threshold}, {len(cfg.cameras)} camera(s))",
        highlight=False,
    )


@config_app.command("policy")
def config_policy(file: Annotated[Path, typer.Argument(help="Watchlist policy YAML to validate.")]) -> None:
    """Validate a watchlist policy file (no prohibited category; declared false-match rates the data can show)."""
    from kuzet.governance.policy import load_policy

    matcher = given_config().face_matcher
    policy = load_policy(file, calibration=_calibration_file(), matcher=matcher)
    policy.check_embedder(matcher)  # under a fusion, thresholds must come from declared rates
    cats = ", ".join(f"{n} ({_limits(policy, n)})" for n in policy.model.categories)
    console.print(f"{file}: OK; categories: {cats}", highlight=False)


def _calibration_file() -> Path | None:
    """The data directory's own calibration, if it has one (else the built-in one is used)."""
    from kuzet.governance.calibration import CALIBRATION_FILE

    path = common.data_dir() / CALIBRATION_FILE
    return path if path.is_file() else None


def _limits(policy: Policy, name: str) -> str:
    c = policy.model.categories[name]
    text = f"max {c.max_days} d, {c.required_reviews} reviewer(s)"
    if c.kind == "face":
        rate = policy.false_match_rate(name)
        text += f", threshold {policy.threshold(name):.4f}" + (
            "" if rate is None else f" from false-match rate {rate:g}"
        )
    return text


@eval_app.command("pairs")
def eval_pairs(
    root: Annotated[Path, typer.Option("--root", help="Folder the pair paths are relative to.")],
    pairs: Annotated[Path, typer.Option("--pairs", help="CSV of img1,img2,same.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures as JSON here.", callback=writable())
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Draw the DET curve to this PNG.", callback=writable((".png",)))
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Face embedders to compare side by side, comma-separated (e.g. dlib-resnet,sface), with the fusion "
            "of their scores; default: the configured embedder alone.",
        ),
    ] = None,
) -> None:
    """Face verification on LFW-style pairs (accuracy, TAR@FAR, EER, AUC)."""
    from kuzet.eval.runner import run_pairs, run_pairs_models

    cfg = given_config()
    if models is not None:
        if plot is not None:
            raise InputError("--plot draws one model's curve", hint="leave out --models or --plot")
        names = [m.strip() for m in models.split(",") if m.strip()]
        compared = run_pairs_models(root, pairs, config=cfg, models=names, console=err_console)
        columns = {**compared.models, **({} if compared.fusion is None else {"fusion": compared.fusion})}
        _print_pairs(columns, title=f"verification: {pairs}")
        if compared.fusion is not None:
            console.print(
                f"fusion: {compared.fusion.embedder}, rule {compared.fusion_rule} (docs/accuracy.md)", highlight=False
            )
        if json_out is not None:
            write_json(json_out, compared.to_json())
        return
    report = run_pairs(root, pairs, config=cfg, plot=plot, console=err_console)
    _print_pairs({report.embedder: report}, title=f"verification: {pairs}")
    if json_out is not None:
        write_json(json_out, report.to_json())


def _print_pairs(reports: dict[str, PairsReport], *, title: str) -> None:
    """One column of `kuzet eval pairs` figures per model."""
    table = Table("metric", *reports, title=title)
    columns = list(reports.values())
    table.add_row("pairs", *(str(r.n_pairs) for r in columns))
    table.add_row("pairs with no face found (errors)", *(str(r.n_no_face) for r in columns))
    table.add_row("accuracy (10-fold)", *(f"{r.accuracy:.4f} ± {r.accuracy_std:.4f}" for r in columns))
    for far in columns[0].tar_at_far:
        table.add_row(f"TAR @ FAR {far}", *(f"{r.tar_at_far[far]:.4f}" for r in columns))
    table.add_row("EER", *(f"{r.eer:.4f}" for r in columns))
    table.add_row("ROC AUC", *(f"{r.auc:.4f}" for r in columns))
    table.add_row("threshold (median of folds)", *(f"{r.threshold:.4f}" for r in columns))
    console.print(table)


@eval_app.command("calibrate")
def eval_calibrate(
    out: Annotated[
        Path,
        typer.Option("-o", "--out", help="Calibration JSON to write (DATA_DIR/calibration.json).", callback=writable()),
    ],
    labels: Annotated[
        list[Path] | None,
        typer.Option("--labels", help="CSV of file,identity (repeat): every pair of its images is scored."),
    ] = None,
    pairs: Annotated[
        list[Path] | None, typer.Option("--pairs", help="CSV of img1,img2,same (repeat): just those pairs.")
    ] = None,
    root: Annotated[
        Path | None, typer.Option("--root", help="Folder the image paths are relative to (default: each CSV's own).")
    ] = None,
) -> None:
    """Measure impostor (different-person) scores, from which declared false-match rates become thresholds."""
    from kuzet.eval.calibrate import run_calibration
    from kuzet.governance.calibration import derive_threshold, needed_pairs

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
    ) as bar:

        def progress(name: str, total: int) -> Callable[[], None]:
            task = bar.add_task(f"embedding {name}", total=total)
            return lambda: bar.advance(task)

        calibration = run_calibration(
            labels=labels or [], pairs=pairs or [], root=root, config=given_config(), progress=progress
        )
    table = Table("data", "images", "no face", "impostor pairs", "genuine pairs", title=f"calibration: {out}")
    for s in calibration.sets:
        table.add_row(s.name, str(s.images), str(s.no_face), str(s.impostor_pairs), str(s.genuine_pairs))
    console.print(table)
    for rate in RATES:
        try:
            d = derive_threshold(calibration, rate)
        except ConfigError:
            line = f"refused: showing it needs {needed_pairs(rate)} impostor pairs"
        else:
            accepted = "" if d.genuine_accepted is None else f"; {d.genuine_accepted:.1%} of genuine pairs accepted"
            line = (
                f"threshold {d.threshold:.4f} ({d.impostors_at_or_above} of {d.impostor_pairs} impostor pairs at or "
                f"above it{accepted})"
            )
        console.print(f"declared false-match rate {rate:g}: {line}", highlight=False)
    try:
        out.write_text(calibration.to_text(), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}", hint="check the folder exists") from None
    console.print(f"wrote {out} ({calibration.impostor_pairs} impostor pairs, {calibration.embedder})", highlight=False)


RATES = (1e-2, 1e-3, 1e-4)
"""Rates `kuzet eval calibrate` shows the thresholds of."""


@eval_app.command("redact")
def eval_redact(
    root: Annotated[Path, typer.Option("--root", help="Folder the image paths of the ground truth are relative to.")],
    gt: Annotated[Path, typer.Option("--gt", help="Ground truth in the WIDER FACE text format.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures (and every miss) here.", callback=writable())
    ] = None,
) -> None:
    """Redaction as it hides faces: share of faces hidden per face width and subset, and image area obscured."""
    from kuzet.eval.runner import run_redact_eval

    report = run_redact_eval(root, gt, config=given_config(), console=err_console)
    hidden = report["hidden"]
    counts = report["faces_by_width"]
    assert isinstance(hidden, dict)
    assert isinstance(counts, dict)
    table = Table("face width (px)", "faces", "hidden", title=f"redaction: {gt} ({report['n_images']} images)")
    for bucket, share in hidden.items():
        n = counts.get(bucket, report["n_faces"])
        table.add_row(bucket, str(n), "-" if share is None else f"{share:.1%}")
    console.print(table)
    subsets = report.get("hidden_by_subset")
    if isinstance(subsets, dict):
        console.print(
            "hidden by subset: " + ", ".join(f"{k} {'-' if v is None else f'{v:.1%}'}" for k, v in subsets.items())
        )
    console.print(
        f"image area obscured: {report['area_obscured']:.1%}; {report['ms_per_image']} ms per image", highlight=False
    )
    if json_out is not None:
        write_json(json_out, report)


@eval_app.command("detect")
def eval_detect(
    root: Annotated[Path, typer.Option("--root", help="Folder the image paths of the ground truth are relative to.")],
    gt: Annotated[Path, typer.Option("--gt", help="Ground truth in the WIDER FACE text format.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.", callback=writable())
    ] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            "--detector", help="centerface, yunet, dlib-hog or recall-first (default: the configured detector)."
        ),
    ] = None,
) -> None:
    """Face detection: recall and AP at IoU 0.5 (per easy/medium/hard subset when labelled), false positives."""
    from kuzet.eval.runner import run_detect_eval

    report = run_detect_eval(root, gt, config=given_config(), detector=detector, console=err_console)
    recall, ap = report["recall"], report["ap"]
    assert isinstance(recall, dict)
    assert isinstance(ap, dict)
    table = Table("subset", "recall", "AP", title=f"detection ({report['detector']}): {gt}")
    for k in recall:
        table.add_row(k, "-" if recall[k] is None else f"{recall[k]:.3f}", f"{ap[k]:.3f}")
    console.print(table)
    console.print(
        f"{report['n_faces']} faces in {report['n_images']} images; {report['fp_per_image']} false positives per "
        f"image; {report['ms_per_image']} ms per image",
        highlight=False,
    )
    if json_out is not None:
        write_json(json_out, report)


@eval_app.command("plates")
def eval_plates(
    labels: Annotated[Path, typer.Option("--labels", help="CSV of file,region,x,y,w,h,plate.")],
    root: Annotated[Path, typer.Option("--root", help="Folder the label paths are relative to.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures and every read here.", callback=writable())
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format", help="Plate formats to read with (repeat: kz, eu, us, br); default each image's region."
        ),
    ] = None,
) -> None:
    """Licence-plate reading: detected, exact match rate, character error rate, per region, ms per image."""
    from kuzet.eval.plates import run_plates

    with Progress(
        TextColumn("reading plates"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
    ) as bar:
        task = bar.add_task("plates", total=None)
        report = run_plates(labels, root, formats=formats, progress=lambda i, n: bar.update(task, completed=i, total=n))
    table = Table("region", "images", "detected", "exact", "CER", title=f"plates: {labels}")
    for region, row in [*report["per_region"].items(), ("all", report)]:
        table.add_row(region, str(row["n"]), f"{row['detected']:.3f}", f"{row['exact']:.3f}", f"{row['cer']:.3f}")
    console.print(table)
    console.print(f"{report['ms_per_image']:.0f} ms per image", highlight=False)
    if json_out is not None:
        write_json(json_out, report)


@eval_app.command("make-pairs")
def eval_make_pairs(
    labels: Annotated[Path, typer.Option("--labels", help="CSV of file,identity.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Pairs CSV to write.", callback=writable())],
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling different-person pairs.")] = 0,
) -> None:
    """Build LFW-style pairs: every same-person pair plus as many random different-person pairs."""
    from kuzet.eval.pairs import make_pairs

    rows = make_pairs(labels, seed=seed)
    text = "img1,img2,same\n" + "".join(f"{p.img1},{p.img2},{int(p.same)}\n" for p in rows)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {len(rows)} pairs ({sum(p.same for p in rows)} same) to {out}", highlight=False)


def bench(
    data: Annotated[
        Path | None, typer.Option("--data", help="The shared data folder (faces/, video/); default $KUZET_DATA.")
    ] = None,
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Write the figures as JSON here.", callback=writable())
    ] = Path("bench/results/bench.json"),
    videos: Annotated[
        list[str] | None, typer.Option("--video", help="Video file names under video/ (repeat); default all three.")
    ] = None,
    baseline_frames: Annotated[
        int,
        typer.Option(
            "--baseline-frames",
            min=0,
            help="Frames per video for the face_recognition way; 0: the whole video, the frames kuzet analyses.",
        ),
    ] = 0,
    gallery_sizes: Annotated[
        list[int] | None, typer.Option("--gallery-size", min=100, help="Gallery sizes (repeat); default 10k 100k 1M.")
    ] = None,
    no_video: Annotated[bool, typer.Option("--no-video", help="Skip the video figures.")] = False,
    chips: Annotated[int, typer.Option("--chips", min=2, help="Face chips for the embedder figures (2 or more).")] = 96,
    rounds: Annotated[
        int,
        typer.Option(
            "--rounds", min=1, max=20, help="Runs of each video, every way interleaved; medians are reported."
        ),
    ] = 1,
) -> None:
    """Speed: faces/s per embedder runtime, analyze frames/s against the face_recognition way, gallery latency."""
    from kuzet.bench import BenchOptions, run_bench

    root = data or Path(os.environ.get("KUZET_DATA", "../shared/data"))
    if not (root / "faces").is_dir() or not (root / "video").is_dir():
        raise InputError(f"{root} has no faces/ and video/ folders", hint="pass --data ../shared/data")
    options = BenchOptions(data=root, baseline_frames=baseline_frames, max_chips=chips, rounds=rounds)
    if videos:
        missing = [v for v in videos if not (root / "video" / v).is_file()]
        if missing:
            raise InputError(f"no such video under {root / 'video'}: {', '.join(missing)}")
        options.videos = videos
    if no_video:
        options.videos = []
    if gallery_sizes:
        options.gallery_sizes = gallery_sizes
    report = run_bench(options, progress=lambda msg: err_console.print(Text(f"{msg}...", style="dim")))
    _print_bench(report)
    write_json(out, report)
    console.print(f"wrote {out}", highlight=False)


def _print_bench(report: dict[str, object]) -> None:
    emb = report["embedders"]
    assert isinstance(emb, dict)
    table = Table("runtime", "faces/s", "x dlib", "min cosine to dlib", title=f"face descriptor ({emb['chips']} chips)")
    for runtime, row in emb.items():
        if not isinstance(row, dict):
            continue
        if "error" in row:
            table.add_row(runtime, "-", "-", row["error"])
            continue
        table.add_row(
            f"{runtime} ({row['device']})",
            f"{row['faces_per_s']:.1f}",
            f"{row.get('speedup_vs_dlib', 1.0):.1f}",
            f"{row.get('min_cosine_to_dlib', 1.0):.6f}",
        )
    console.print(table)
    analyze = report.get("analyze")
    if isinstance(analyze, dict):
        table = Table(
            "video",
            "kuzet frames/s (x)",
            "tracked frames at full resolution (x)",
            "min_face 40 (x)",
            "no motion gate (x)",
            "CPU s gated / not",
            "face_recognition way",
            title="frames per second",
        )
        for video, row in analyze.items():
            d, w, m, n = row["default"], row["tracked_full"], row["min_face_40"], row["no_motion_gate"]
            table.add_row(
                video,
                f"{d['fps']:.1f} ({d['speedup']:.1f})",
                f"{w['fps']:.1f} ({w['speedup']:.1f})",
                f"{m['fps']:.1f} ({m['speedup']:.1f})",
                f"{n['fps']:.1f} ({n['speedup']:.1f})",
                f"{d['cpu_s']:.1f} / {n['cpu_s']:.1f}",
                f"{row['face_recognition_style']['fps']:.2f}",
            )
        console.print(table)
    gallery = report.get("gallery")
    if isinstance(gallery, dict):
        table = Table("templates", "exact p50/p99 ms", "FAISS p50/p99 ms", "FAISS recall@1", "index build s")
        for size, row in gallery.items():
            table.add_row(
                size,
                f"{row['exact']['p50_ms']:.2f} / {row['exact']['p99_ms']:.2f}",
                f"{row['faiss_ivf']['p50_ms']:.2f} / {row['faiss_ivf']['p99_ms']:.2f}",
                f"{row['faiss_ivf']['recall_at_1']:.4f}",
                f"{row['index_build_s']:.1f}",
            )
        console.print(table)
