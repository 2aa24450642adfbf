"""Capacity figures for a city deployment, on this machine: the inputs of docs/scale.md's 10,000-camera model.

Measured on PostgreSQL (a private server this script starts, or `--database-url`) and on SQLite:

- ledger appends per second with 1, 4 and 16 writer processes (each as a machine would be: its own services, one
  entry per transaction), and with 16 threads in one process (group commit);
- live decisions committed per second end to end, by 4 writer processes: each commit stores an analysis run with one
  match event, its ledger entry, a signed checkpoint and an outbox notice, as a live camera's commit does;
- the gallery's reload time with 1,000 approved people (3 templates each, encrypted), and the time a running camera
  takes to apply one approval from the change feed, which with `run.gallery_poll_s` bounds how long an approval
  takes to reach a camera.

Usage: python -m bench.bench_cluster [--seconds 5] [--out bench/results/cluster.json] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kuzet.core.types import Identity
from kuzet.services.container import Services, build_services
from kuzet.services.uow import Work
from kuzet.store.repositories.events import NewEvent, RunRecord
from kuzet.store.repositories.gallery import Enrolment, NewTemplate


def _services(data_dir: str, url: str) -> Services:
    if url:
        os.environ["KUZET_DATABASE_URL"] = url
    else:
        os.environ.pop("KUZET_DATABASE_URL", None)
    return build_services(Path(data_dir))


def _append(svc: Services) -> None:
    svc.uow.record(None, "bench.append", object="ledger")


_PERSON: list[Identity] = []


def _decision(svc: Services) -> None:
    now = svc.ctx.now()
    if not _PERSON:
        with svc.uow.read() as r:
            _PERSON.append(r.gallery.people(status="approved")[0].identity)
    person = _PERSON[0]
    with svc.uow.tx() as w:
        run = RunRecord(camera="cam", source="rtsp://bench", started_at=now, frames=10, faces=1, tracks=1,
                        matched_tracks=1, unknown_tracks=0)  # fmt: skip
        event = NewEvent(person.person_id, person.name, score=0.93, start=1.0, end=2.0, track_id=1, snapshot="")
        run_id, events = w.events.save_run(run, [event], now=now)
        w.audit(None, "analysis.live", object=f"run:{run_id}", details={"camera": "cam", "events": 1})
        w.outbox.add("event", "cam", {"id": events[0].event_id, "score": 0.93, "run": run_id}, now=now)


WORK: dict[str, Callable[[Services], None]] = {"append": _append, "decision": _decision}


def _writer(data_dir: str, url: str, work: str, threads: int, ready: Any, go: Any, stop_at: Any, out: Any) -> None:
    svc = _services(data_dir, url)
    fn = WORK[work]
    counts = [0] * threads
    ready.put(1)
    go.wait()

    def loop(i: int) -> None:
        while time.time() < stop_at.value:
            fn(svc)
            counts[i] += 1

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    svc.close()
    out.put(sum(counts))


def rate(data_dir: str, url: str, work: str, processes: int, threads: int, seconds: float) -> float:
    """Operations per second over `seconds`, `processes` writer processes of `threads` threads each."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    stop_at = ctx.Value("d", 0.0)
    procs = [
        ctx.Process(target=_writer, args=(data_dir, url, work, threads, ready, go, stop_at, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:  # every writer has opened its services (16 take a while to start on 2 cores)
        ready.get(timeout=300)
    stop_at.value = time.time() + seconds
    go.set()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join(30)
    return total / seconds


def _approved_person(w: Work, svc: Services, rng: np.random.Generator, name: str, approver: int) -> None:
    """An approved enrolment of three random unit templates (encrypted like real ones)."""
    now = svc.ctx.now()
    vectors = rng.normal(size=(3, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    templates = [NewTemplate(v, f"{name}:{j}") for j, v in enumerate(vectors)]
    model = svc.ctx.models.face_embedder.name
    identity, _ = w.gallery.add_templates(
        name, templates, model=model, cipher=svc.ctx.cipher, enrolment=Enrolment(), now=now
    )
    w.gallery.decide(identity.person_id, approve=True, approver_id=approver, reason="bench", now=now)


def gallery_reload(svc: Services, people: int = 1000) -> dict[str, float]:
    """Seconds to load a gallery of `people` approved people of 3 templates each (median of 5 loads)."""
    rng = np.random.default_rng(7)
    admin = svc.users.init_admin("admin", "bench password 1")
    with svc.uow.tx() as w:
        for i in range(people):
            _approved_person(w, svc, rng, f"Person {i}", admin.user_id)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        gallery = svc.gallery.load("bench")
        times.append(time.perf_counter() - start)
    # one more approval, applied to the loaded gallery from the change feed (what a running camera does)
    updates = []
    for k in range(5):
        seen = svc.gallery.change_head()
        with svc.uow.tx() as w:
            _approved_person(w, svc, rng, f"New person {k}", admin.user_id)
        start = time.perf_counter()
        got = svc.gallery.updated("bench", gallery, seen)
        updates.append(time.perf_counter() - start)
        assert got is not None
        gallery = got[0]
    return {
        "people": people,
        "templates": 3 * people,
        "loaded": len(gallery.people),
        "reload_s": statistics.median(times),
        "one_change_s": statistics.median(updates),
    }


def engine_figures(name: str, url: str, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"engine": name}
    with tempfile.TemporaryDirectory() as tmp:
        svc = _services(tmp, url)  # one data directory (its keys) per database
        out["gallery"] = gallery_reload(svc)
        svc.close()
        print(f"{name}: gallery reload {out['gallery']}", flush=True)
        for procs, threads in ((1, 1), (4, 1), (16, 1), (1, 16)):
            key = f"appends_per_s_{procs}p_{threads}t"
            out[key] = round(rate(tmp, url, "append", procs, threads, seconds), 1)
            print(f"{name}: ledger appends/s, {procs} process(es) x {threads} thread(s): {out[key]}", flush=True)
        out["decisions_per_s_4p"] = round(rate(tmp, url, "decision", 4, 1, seconds), 1)
        print(f"{name}: live decisions committed/s, 4 processes: {out['decisions_per_s_4p']}", flush=True)
    return out


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (a timeout, `kill`) ends the run as Ctrl-C does: the `finally` stops the private PostgreSQL server."""
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window of each figure")
    parser.add_argument("--database-url", default="", help="a PostgreSQL database to use (empty: start one)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/cluster.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "seconds": args.seconds}
    server = None
    url = args.database_url
    if not url:
        from tests.support.postgres import PostgresServer

        server = PostgresServer()
    try:
        if server is not None:
            server.start()
            import psycopg

            with psycopg.connect(server.url(), autocommit=True) as con:
                con.execute("CREATE DATABASE bench")
            url = server.url("bench")
        results["engines"] = [
            engine_figures("postgresql", url, args.seconds),
            engine_figures("sqlite", "", args.seconds),
        ]
    finally:
        if server is not None:
            server.close()
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
