"""`kuzet serve --workers N`: every process listens on a socket of its own, hands its checkpoints to the witnesses
as it stops, and none outlives the command."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

from kuzet.config.loading import load_config
from kuzet.services.container import build_services
from tests.conftest import PASSWORD
from tests.support.rawdb import raw_db
from tests.support.serve import ESTABLISHED, LISTEN, KuzetServe, proc_stat, tcp_sockets


def _data(tmp_path: Path, config: dict[str, object]) -> tuple[Path, Path, str]:
    data, cfg = tmp_path / "data", tmp_path / "kuzet.yaml"
    cfg.write_text(yaml.safe_dump(config))
    svc = build_services(data, load_config(cfg))
    admin = svc.users.init_admin("admin", PASSWORD)
    svc.users.add(admin, "operator", PASSWORD, ["operator"])
    token = svc.users.login("operator", PASSWORD)[1]
    svc.close()
    return data, cfg, token


def _running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie waits only for its exit status to be read)."""
    try:
        return proc_stat(pid)[0] != "Z"
    except OSError:
        return False


def test_each_worker_listens_on_its_own_socket_and_gets_its_share_of_connections(tmp_path: Path) -> None:
    """One socket shared by every worker leaves most connections to whichever wakes first (a p99 set by one
    queue); a socket each (SO_REUSEPORT) lets the kernel spread them."""
    data, cfg, _ = _data(tmp_path, {})
    with KuzetServe(data, tmp_path / "serve.log", config=cfg, args=("--workers", "2")) as server:
        workers = server.workers()
        listening = [tcp_sockets(pid, server.port, LISTEN) for pid in workers]
        assert [len(s) for s in listening] == [1, 1] and listening[0] != listening[1]
        clients = [httpx.Client(base_url=server.url, timeout=10) for _ in range(60)]
        try:
            for c in clients:  # each keeps its connection open
                assert c.get("/api/health").status_code == 200
            shares = [len(tcp_sockets(pid, server.port, ESTABLISHED)) for pid in workers]
        finally:
            for c in clients:
                c.close()
    assert sum(shares) == 60 and min(shares) >= 10  # an even split by hash; under 10 of 60: about 1 in 10^7


def test_each_worker_hands_its_last_checkpoints_to_the_witnesses_as_it_stops(tmp_path: Path) -> None:
    witness = tmp_path / "elsewhere" / "witness.jsonl"
    data, cfg, token = _data(tmp_path, {"audit": {"witnesses": [{"type": "file", "path": str(witness)}]}})
    with KuzetServe(data, tmp_path / "serve.log", config=cfg, args=("--workers", "2")) as server:
        assert len(server.workers()) == 2

        def view(i: int) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.get(f"{server.url}/api/events", params={"camera": f"c{i}"}, headers=headers).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(view, range(80))) == {200}
    # stopped with SIGTERM (as systemd or Ctrl-C stops it): the checkpoints both processes signed last are out
    con = raw_db(data, read_only=True)
    signed = {size for (size,) in con.execute("SELECT tree_size FROM audit_checkpoints")}
    con.close()
    witnessed = {json.loads(line)["tree_size"] for line in witness.read_text().splitlines()}
    assert max(signed) >= 80 and signed <= witnessed


def test_workers_end_with_the_command_even_when_it_is_killed(tmp_path: Path) -> None:
    data, cfg, _ = _data(tmp_path, {})
    with KuzetServe(data, tmp_path / "serve.log", config=cfg, args=("--workers", "2")) as server:
        workers = server.workers()
        assert len(workers) == 2
        os.kill(server.pid, signal.SIGKILL)  # the command alone, as the OOM killer would
        assert server.proc is not None
        server.proc.wait(10)
        deadline = time.monotonic() + 15
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in workers if _running(pid)]
        assert left == []  # nobody is left holding the port
        with httpx.Client() as http:
            try:
                http.get(f"{server.url}/api/health", timeout=2)
                answered = True
            except httpx.HTTPError:
                answered = False
        assert not answered
