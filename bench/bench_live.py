"""How many live RTSP cameras this machine analyses in real time at 10 frames/s with motion gating, and CPU each.

Loopback only, and it stops by itself: gst-rtsp-server (Debian's python3-gi) serves the sample videos as cameras;
`kuzet run`'s supervisor starts one worker process per camera (face analytics, motion gating on, Lin-Manuel enrolled
so there is a real gallery). For N = 1, 2, 3 ... it measures a window after every camera is up:

- analysed frames/s per camera, and the share of sampled frames dropped because analysis fell behind;
- CPU per camera: the workers' user+system CPU time over the window (from /proc), divided by N.

N is sustained in real time when no more than 5% of the frames sampled at 10/s were dropped. The ramp stops at the
first N that is not sustained (or at --max-cameras). First, each sample video alone with motion gating on and off.

Usage (from the repository root): python -m bench.bench_live [--seconds 30] [--max-cameras 8]
                                   [--out bench/results/live.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

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


def measure(server: RtspServer, names: list[str], *, seconds: float, gate: bool, root: Path) -> dict[str, object]:
    """Run `names` (mounts, repeated as needed) as cameras for a window; return rates, drops and CPU."""
    cameras = [
        {"name": f"cam{i}-{n}", "source": server.url(n), "purpose": "benchmark on loopback"}
        for i, n in enumerate(names)
    ]
    config = KuzetConfig.model_validate(
        {"cameras": cameras, "motion_gate": {"enabled": gate}, "run": {"reconnect_initial_s": 0.2}}
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
        start = {c.camera: c for c in sup.statuses()}
        cpu0, t0 = sum(cpu_seconds(p) for p in pids), time.monotonic()
        while time.monotonic() - t0 < seconds:
            sup.step(0.25)
        cpu1, t1 = sum(cpu_seconds(p) for p in pids), time.monotonic()
        end = {c.camera: c for c in sup.statuses()}
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
        "window_s": round(window, 1),
        "analysed_fps_per_camera": round(analysed / window / n, 2),
        "dropped_share": round(dropped / max(1, analysed + dropped), 4),
        "gated_share": round(gated / max(1, analysed), 3),
        "cpu_per_camera": round((cpu1 - cpu0) / window / n, 3),
        "worker_restarts": restarts,
        "sustained": dropped <= 0.05 * (analysed + dropped) and restarts == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per configuration")
    parser.add_argument("--max-cameras", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/results/live.json"))
    args = parser.parse_args()
    server = RtspServer({n: DATA / "video" / f for n, f in VIDEOS.items()}, Path(tempfile.mkdtemp()) / "rtsp.log")
    server.start()
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "fps": 10,
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            single = []
            for name in VIDEOS:
                for gate in (True, False):
                    root = Path(tmp) / f"data-{name}-{gate}"
                    r = measure(server, [name], seconds=args.seconds, gate=gate, root=root)
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
            for n in range(1, args.max_cameras + 1):
                cams = [names[i % len(names)] for i in range(n)]
                r = measure(server, cams, seconds=args.seconds, gate=True, root=Path(tmp) / f"data-{n}")
                ramp.append(r)
                print(
                    f"N={n}: {r['analysed_fps_per_camera']} fps/camera, dropped {r['dropped_share']:.1%}, "
                    f"cpu/camera {r['cpu_per_camera']:.2f} cores, sustained {r['sustained']}",
                    flush=True,
                )
                if not r["sustained"]:
                    break
            results["ramp"] = ramp
            sustained = [r["cameras"] for r in ramp if r["sustained"]]
            results["max_cameras_real_time"] = max(sustained) if sustained else 0
    finally:
        server.stop()
    print(f"largest N sustained in real time at 10 fps with motion gating: {results['max_cameras_real_time']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
