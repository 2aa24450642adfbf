"""How many live RTSP cameras this machine analyses in real time at 10 frames/s with motion gating, and CPU each.

Loopback only, and it stops by itself: gst-rtsp-server (Debian's python3-gi) serves the sample videos as cameras;
`kuzet run`'s supervisor starts one worker process per camera (face analytics, motion gating on, Lin-Manuel enrolled
so there is a real gallery). For N = 1, 2, 3 ... it measures a window after every camera is up:

- analysed frames/s per camera, and the share of sampled frames dropped because analysis fell behind;
- CPU per camera: the workers' user+system CPU time over the window (from /proc), divided by N.

N is sustained in real time when no more than 5% of the frames sampled at 10/s were dropped. The ramp stops at the
first N that is not sustained (or at --max-cameras). First, each sample video alone with motion gating on and off
(`--no-single` skips them). A whole ramp takes about 3 minutes per N; `--from N` starts it at N, to find today's
largest N near a known one (the cameras are then N of the same rotation: people, road, stage, people, ...).

With `--streams two` (the default), each camera is what an NVR user configures: the video re-encoded once at
640x360 as its analysis stream (`source`) and at 1280x720 as its main stream (`record_source`, recorded in `events`
mode); `--streams one` serves the sample files as they are, one stream per camera. `--shared-detector` turns on
`run.shared_detector` (one CenterFace process for every camera; its CPU is counted in the cameras' CPU).
`--tracked-share 0` turns off following tracked faces at the scale they need (`face_detector.tracked_share`).

Usage (from the repository root): python -m bench.bench_live [--seconds 30] [--from 1] [--max-cameras 8]
                                   [--streams two] [--no-single] [--shared-detector] [--out bench/results/live.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import av
from tests.support.servers import RtspServer

from kuzet.config.models import KuzetConfig
from kuzet.runtime.supervisor import Supervisor
from kuzet.services.container import build_services

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
VIDEOS = {
    "people": "one-by-one-person-detection.mp4",
    "road": "car-detection.mp4",
    "stage": "short_hamilton_clip.mp4",
}
TICK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench password 1"
"""A throwaway administrator of a throwaway data directory."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(
    server: RtspServer,
    names: list[str],
    *,
    seconds: float,
    gate: bool,
    root: Path,
    main: bool = False,
    shared: bool = False,
    tracked_share: float = 0.5,
) -> dict[str, object]:
    """Run `names` (mounts, repeated as needed) as cameras for a window; return rates, drops and CPU.

    With `main`, each camera also records its main stream (mount `NAME-main`) in `events` mode. With `shared`, the
    cameras share one detector process (`run.shared_detector`), whose CPU counts towards the cameras'.
    """
    cameras: list[dict[str, object]] = [
        {"name": f"cam{i}-{n}", "source": server.url(n), "purpose": "benchmark on loopback"}
        for i, n in enumerate(names)
    ]
    if main:
        for camera, n in zip(cameras, names, strict=True):
            camera.update(record_source=server.url(f"{n}-main"), record={"mode": "events"})
    config = KuzetConfig.model_validate(
        {
            "cameras": cameras,
            "motion_gate": {"enabled": gate},
            "face_detector": {"type": "centerface", "tracked_share": tracked_share},
            "run": {"reconnect_initial_s": 0.2, "shared_detector": shared},
        }
    )
    svc = build_services(root, config)
    svc.users.init_admin("bench", PASSWORD)
    admin, _ = svc.users.login("bench", PASSWORD)
    approver = svc.users.add(admin, "approver", PASSWORD, ["approver"])
    lin = DATA / "faces/face_recognition_examples/lin-manuel-miranda.png"
    person = svc.gallery.enroll(admin, "Lin-Manuel Miranda", [lin], consent="benchmark")
    svc.gallery.approve(approver, person.identity.person_id, reason="benchmark")
    sup = Supervisor(svc, admin, secrets=svc.ctx.secrets())
    sup.start()
    try:
        deadline = time.monotonic() + 120
        while not all(s.status().state == "up" and s.status().frames_analysed > 0 for s in sup.slots.values()):
            sup.step(0.2)
            if time.monotonic() > deadline:
                raise RuntimeError("cameras did not come up within 120 s")
        for _ in range(10):
            sup.step(0.2)  # let the first seconds (model warm-up) pass
        pids = [s.status().pid for s in sup.slots.values()]
        if sup.detector is not None:
            pids.append(sup.detector.pid)
        batches0 = sup.service_status()
        start = {c.camera: c for c in sup.statuses()}
        assert server.proc is not None
        others = (server.proc.pid, os.getpid())  # the RTSP test server; the supervisor (this process)
        cpu0, t0 = sum(cpu_seconds(p) for p in pids), time.monotonic()
        rest0 = [cpu_seconds(p) for p in others]
        while time.monotonic() - t0 < seconds:
            sup.step(0.25)
        cpu1, t1 = sum(cpu_seconds(p) for p in pids), time.monotonic()
        rest1 = [cpu_seconds(p) for p in others]
        end = {c.camera: c for c in sup.statuses()}
        batches1 = sup.service_status()
        restarts = sum(c.worker_restarts for c in end.values())
    finally:
        sup.stop()
        svc.close()
    window = t1 - t0
    analysed = sum(end[c].frames_analysed - start[c].frames_analysed for c in end)
    dropped = sum(end[c].frames_dropped - start[c].frames_dropped for c in end)
    gated = sum(end[c].frames_gated - start[c].frames_gated for c in end)
    n = len(names)
    return {
        "cameras": n,
        "videos": names,
        "motion_gate": gate,
        "main_stream": main,
        "window_s": round(window, 1),
        "analysed_fps_per_camera": round(analysed / window / n, 2),
        "dropped_share": round(dropped / max(1, analysed + dropped), 4),
        "gated_share": round(gated / max(1, analysed), 3),
        "cpu_per_camera": round((cpu1 - cpu0) / window / n, 3),
        "rtsp_server_cores": round((rest1[0] - rest0[0]) / window, 3),
        "supervisor_cores": round((rest1[1] - rest0[1]) / window, 3),
        "worker_restarts": restarts,
        "shared_detector": shared,
        "detector_frames_per_call": round(
            (batches1.detector_frames - batches0.detector_frames)
            / max(1, batches1.detector_calls - batches0.detector_calls),
            2,
        ),
        "sustained": dropped <= 0.05 * (analysed + dropped) and restarts == 0,
    }


def streams(videos: dict[str, Path], work: Path) -> dict[str, Path]:
    """Each video as a camera's two streams: `NAME` at 640x360 (analysed) and `NAME-main` at 1280x720.

    Key frames every 2 s and no B-frames, as IP cameras send.
    """
    from tests.support.servers import transcode

    mounts: dict[str, Path] = {}
    for name, video in videos.items():
        with av.open(str(video)) as c:
            gop = max(1, round(2 * float(c.streams.video[0].average_rate or 10)))
        mounts[name] = transcode(video, work / f"{name}-sub.mp4", width=640, height=360, gop=gop)
        mounts[f"{name}-main"] = transcode(video, work / f"{name}-main.mp4", width=1280, height=720, gop=gop)
    return mounts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per configuration")
    parser.add_argument("--from", dest="first", type=int, default=1, help="the ramp's first N")
    parser.add_argument("--max-cameras", type=int, default=8)
    parser.add_argument("--no-single", action="store_true", help="skip each video alone, gate on and off")
    parser.add_argument("--streams", choices=["one", "two"], default="two", help="two: 640x360 + 1280x720 main")
    parser.add_argument("--shared-detector", action="store_true", help="run.shared_detector: one CenterFace process")
    parser.add_argument("--tracked-share", type=float, default=0.5, help="face_detector.tracked_share (0: off)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/live.json"))
    args = parser.parse_args()
    if not 1 <= args.first <= args.max_cameras:
        parser.error(f"--from {args.first}: give an N from 1 to --max-cameras ({args.max_cameras})")
    work = Path(tempfile.mkdtemp())
    two = args.streams == "two"
    mounts = {n: DATA / "video" / f for n, f in VIDEOS.items()}
    if two:
        print("encoding the analysis (640x360) and main (1280x720) streams once ...", flush=True)
        mounts = streams(mounts, work)
    server = RtspServer(mounts, work / "rtsp.log")
    server.start()
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "fps": 10,
        "shared_detector": args.shared_detector,
        "tracked_share": args.tracked_share,
        "streams": "640x360 analysed, 1280x720 main recorded (events)" if two else "the sample files as they are",
    }
    try:
        common = {
            "seconds": args.seconds,
            "main": two,
            "shared": args.shared_detector,
            "tracked_share": args.tracked_share,
        }
        with tempfile.TemporaryDirectory() as tmp:
            single = []
            for name in [] if args.no_single else VIDEOS:
                for gate in (True, False):
                    root = Path(tmp) / f"data-{name}-{gate}"
                    r = measure(server, [name], gate=gate, root=root, **common)
                    single.append(r)
                    print(
                        f"{name:7s} gate={'on ' if gate else 'off'} cpu/camera {r['cpu_per_camera']:.2f} cores, "
                        f"{r['analysed_fps_per_camera']} fps, dropped {r['dropped_share']:.1%}, "
                        f"gated {r['gated_share']:.0%}",
                        flush=True,
                    )
            results["single"] = single
            ramp = []
            names = list(VIDEOS)
            for n in range(args.first, args.max_cameras + 1):
                cams = [names[i % len(names)] for i in range(n)]
                root = Path(tmp) / f"data-{n}"
                r = measure(server, cams, gate=True, root=root, **common)
                ramp.append(r)
                print(
                    f"N={n}: {r['analysed_fps_per_camera']} fps/camera, dropped {r['dropped_share']:.1%}, "
                    f"cpu/camera {r['cpu_per_camera']:.2f} cores (RTSP server {r['rtsp_server_cores']:.2f}, supervisor "
                    f"{r['supervisor_cores']:.2f}), sustained {r['sustained']}",
                    flush=True,
                )
                if not r["sustained"]:
                    break
            results["ramp"] = ramp
            sustained = [r["cameras"] for r in ramp if r["sustained"]]
            # started above 1 and nothing sustained: the largest N is below the ramp's start, not known
            results["max_cameras_real_time"] = max(sustained) if sustained else (0 if args.first == 1 else None)
            results["ramp_from"] = args.first
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)  # the re-encoded streams
    largest = results["max_cameras_real_time"]
    shown = f"below {args.first}" if largest is None else largest
    print(f"largest N sustained in real time at 10 fps with motion gating: {shown}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
