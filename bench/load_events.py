"""Load check of the events API: 100 concurrent clients on loopback, bounded in requests and time.

Starts `kuzet serve` (its own process, uvicorn) on 127.0.0.1 over a data directory holding some events, then runs
`--clients` concurrent clients (asyncio + httpx, in this process) that each make `--requests` GET /api/events calls
with a bearer token, and reports the latency percentiles. Every request is authenticated and writes its audit entry
and a signed checkpoint. It only ever talks to 127.0.0.1 and stops by itself.

Usage: python bench/load_events.py [--clients 100] [--requests 20] [--out bench/results/load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kuzet.app import Kuzet

DATA = Path(os.environ.get("KUZET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PASSWORD = "load check password"


def prepare(folder: Path) -> tuple[Kuzet, str]:
    svc = Kuzet(folder)
    admin = svc.init_admin("admin", PASSWORD)
    operator = svc.add_user(admin, "operator", PASSWORD, ["operator"])
    examples = DATA / "faces" / "face_recognition_examples"
    approver = svc.add_user(admin, "approver", PASSWORD, ["approver"])
    person = svc.enroll(operator, "Barack Obama", [examples / "knn_train_obama_obama.jpg"], consent="load check")
    svc.people_approve(approver, person.identity.person_id, reason="load check")
    for i in range(10):
        svc.analyze(operator, str(examples / "knn_test_obama1.jpg"), camera=f"cam-{i % 3}")
    return svc, svc.login("operator", PASSWORD)[1]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20, help="per client")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds before the check gives up")
    parser.add_argument("--out", type=Path, default=Path("bench/results/load.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        svc, token = prepare(Path(tmp))
        svc.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exe = Path(sys.executable).parent / "kuzet"
        server = subprocess.Popen(
            [str(exe), "--data-dir", tmp, "serve", "--host", "127.0.0.1", "--port", str(port)],
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
            latencies, errors, seconds = asyncio.run(
                run(f"http://127.0.0.1:{port}", token, args.clients, args.requests, args.budget)
            )
        finally:
            server.terminate()
            server.wait(timeout=20)
    ms = sorted(x * 1000 for x in latencies)
    result = {
        "clients": args.clients,
        "requests": len(ms),
        "errors": len(errors),
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(ms) / seconds, 1),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 1),
        "max_ms": round(ms[-1], 1),
    }
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
