"""Load check of the events API: 100 concurrent clients on loopback, bounded in requests and time.

Starts `kuzet serve` (its own process, uvicorn) on 127.0.0.1 over a data directory holding some events, then runs
`--clients` concurrent clients (asyncio + httpx, in this process) that each make `--requests` GET /api/events calls
with a bearer token, and reports the latency percentiles. Every request is authenticated and writes its audit entry
and a signed checkpoint. It only ever talks to 127.0.0.1 and stops by itself.

Usage: python bench/load_events.py [--clients 100] [--requests 20] [--out bench/results/load.json]
       python bench/load_events.py --client wrk (as fast as answered, 10 s) | --client hey --rate 1000 --groups 10
       (a fixed rate, 10 s: see docs/performance.md)
On PostgreSQL: KUZET_DATABASE_URL=postgresql://... python bench/load_events.py (an empty database).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kuzet.services.container import Services, build_services

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PASSWORD = "load check password"


def prepare(folder: Path) -> tuple[Services, str]:
    svc = build_services(folder)
    admin = svc.users.init_admin("admin", PASSWORD)
    operator = svc.users.add(admin, "operator", PASSWORD, ["operator"])
    examples = DATA / "faces" / "face_recognition_examples"
    approver = svc.users.add(admin, "approver", PASSWORD, ["approver"])
    person = svc.gallery.enroll(
        operator, "Barack Obama", [examples / "knn_train_obama_obama.jpg"], consent="load check"
    )
    svc.gallery.approve(approver, person.identity.person_id, reason="load check")
    for i in range(10):
        svc.analysis.analyze(operator, str(examples / "knn_test_obama1.jpg"), camera=f"cam-{i % 3}")
    return svc, svc.users.login("operator", PASSWORD)[1]


async def client(base: str, token: str, n: int, latencies: list[float], errors: list[int]) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for i in range(n):
            start = time.perf_counter()
            r = await http.get("/api/events", params={"limit": 20, "camera": f"cam-{i % 3}"})
            latencies.append(time.perf_counter() - start)
            if r.status_code != 200:
                errors.append(r.status_code)


async def run(
    base: str, token: str, clients: int, requests: int, budget_s: float
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(client(base, token, requests, latencies, errors) for _ in range(clients))), timeout=budget_s
    )
    return latencies, errors, time.perf_counter() - start


def _ms(text: str) -> float:
    """A wrk duration ("850.00us", "12.34ms", "1.20s") in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[m.group(2)]


def run_wrk(base: str, token: str, clients: int, seconds: float) -> dict[str, float]:
    """The same requests from wrk (a C load generator: it leaves the cores to the server), for `seconds`."""
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (or use the default Python client)")
    url = f"{base}/api/events?limit=20&camera=cam-1"
    out = subprocess.run(
        [exe, "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate_m, total_m = re.search(r"Requests/sec:\s+([\d.]+)", out), re.search(r"(\d+) requests in", out)
    if rate_m is None or total_m is None:
        raise SystemExit(f"could not read wrk's report:\n{out}")
    rate, total = float(rate_m.group(1)), int(total_m.group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, flags=re.M)}
    if set(pct) != {"50", "99"}:
        raise SystemExit(f"could not read wrk's latency percentiles:\n{out}")
    return {"requests": total, "errors": int(bad.group(1)) if bad else 0, "seconds": seconds,
            "requests_per_s": rate, "p50_ms": pct["50"], "p99_ms": pct["99"]}  # fmt: skip


def run_hey(base: str, token: str, clients: int, seconds: float, rate: float, groups: int) -> dict[str, float]:
    """`rate` requests/s offered by `clients` clients of Debian's `hey` (each `rate / clients` a second), for `seconds`.

    One hey's clients all ask at the same ticks (bursts of `clients` requests). `groups` hey processes, each with its
    share of the clients and started a `groups`-th of a tick after the one before, spread the bursts over the tick,
    as clients that come independently would. Latencies from hey's per-request CSV.
    """
    exe = shutil.which("hey")
    if exe is None:
        raise SystemExit("hey is not installed: apt-get install hey (or use the default Python client)")
    if clients % groups:
        raise SystemExit(f"--clients {clients} is not a multiple of --groups {groups}")
    url = f"{base}/api/events?limit=20&camera=cam-1"
    per_client = rate / clients
    command = [exe, "-c", str(clients // groups), "-q", f"{per_client:g}", "-z", f"{int(seconds)}s", "-o", "csv",
               "-H", f"Authorization: Bearer {token}", url]  # fmt: skip
    runs = []
    for _ in range(groups):
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(1 / per_client / groups)
    rows = []
    for run in runs:
        out, err = run.communicate()
        if run.returncode != 0:
            raise SystemExit(f"hey failed ({run.returncode}): {err[:2000]}")
        rows += list(csv.DictReader(io.StringIO(out)))
    if not rows:
        raise SystemExit("hey answered no requests")
    ms = sorted(float(r["response-time"]) * 1000 for r in rows)
    return {"requests": len(ms), "errors": sum(r["status-code"] != "200" for r in rows), "seconds": seconds,
            "offered_per_s": rate, "groups": groups, "requests_per_s": round(len(ms) / seconds, 1),
            "p50_ms": round(statistics.median(ms), 1), "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 1),
            "max_ms": round(ms[-1], 1)}  # fmt: skip


def _listening(port: int) -> int:
    """How many sockets listen on loopback `port` (each of `kuzet serve --workers N` has its own)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20, help="per client")
    parser.add_argument("--workers", type=int, default=1, help="server processes (kuzet serve --workers)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds before the check gives up")
    parser.add_argument("--out", type=Path, default=Path("bench/results/load.json"))
    parser.add_argument(
        "--client",
        choices=["python", "wrk", "hey"],
        default="python",
        help="wrk: a C client (Debian's wrk) for 10 s, as fast as answered; hey: Debian's hey for 10 s at --rate",
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s all clients offer (--client hey)")
    parser.add_argument("--groups", type=int, default=1, help="hey processes whose bursts are spread (--client hey)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        svc, token = prepare(Path(tmp))
        svc.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exe = Path(sys.executable).parent / "kuzet"
        server = subprocess.Popen(
            [str(exe), "--data-dir", tmp, "serve", "--host", "127.0.0.1", "--port", str(port)]
            + (["--workers", str(args.workers)] if args.workers > 1 else []),
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tempfile.gettempdir()) / "kuzet-load-server.log", "w"),  # noqa: SIM115
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            while _listening(port) < args.workers and time.monotonic() < deadline:
                time.sleep(0.2)  # the first worker up answers; each other listens once it has built its app
            if args.client == "wrk":
                measured = run_wrk(f"http://127.0.0.1:{port}", token, args.clients, 10.0)
            elif args.client == "hey":
                measured = run_hey(f"http://127.0.0.1:{port}", token, args.clients, 10.0, args.rate, args.groups)
            else:
                latencies, errors, seconds = asyncio.run(
                    run(f"http://127.0.0.1:{port}", token, args.clients, args.requests, args.budget)
                )
        finally:
            server.terminate()
            server.wait(timeout=20)
        svc = build_services(Path(tmp))
        with svc.uow.read() as r:
            views = len(r.ledger.entries(limit=10**9, action="events.view"))
            checkpoints = len(r.ledger.checkpoints())
        engine = "postgresql" if svc.ctx.db.postgres else "sqlite"
        svc.close()
    if args.client == "python":
        ms = sorted(x * 1000 for x in latencies)
        measured = {
            "requests": len(ms),
            "errors": len(errors),
            "seconds": round(seconds, 2),
            "requests_per_s": round(len(ms) / seconds, 1),
            "p50_ms": round(statistics.median(ms), 1),
            "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 1),
            "max_ms": round(ms[-1], 1),
        }
    result = {
        "client": args.client,
        "clients": args.clients,
        **measured,
        "engine": engine,
        "audit_entries": views,  # one per answered request (and none missing: each was durable before its answer)
        "checkpoints": checkpoints,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
