"""Attacks on a real `kuzet serve`, as an insider or anyone on the network would try them.

Each test starts `kuzet serve` in its own process over a fresh data directory and attacks it over HTTP (or a raw
socket where HTTP clients are too polite): screening, sign-in throttling, forged client addresses, uploads before
sign-in, cookies, the live event stream, and the auditor's monitor.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from kuzet.app import Kuzet
from kuzet.config.models import KuzetConfig
from kuzet.core.types import ROLES
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.recognize import FaceEmbedder
from tests.conftest import PASSWORD, share_models, utc_today
from tests.support.rawdb import raw_db
from tests.support.serve import KUZET, KuzetServe

pytestmark = pytest.mark.store

EXAMPLES = "face_recognition_examples"


def _prepare(root: Path, config: dict[str, object] | None = None) -> tuple[Path, Path | None]:
    """A data directory with one user per role; returns it and the config file written for `kuzet serve`."""
    data = root / "data"
    cfg_file = None
    if config is not None:
        cfg_file = root / "kuzet.yaml"
        cfg_file.write_text(yaml.safe_dump(config))
    svc = Kuzet(data, KuzetConfig.model_validate(config or {}))
    admin = svc.init_admin("admin", PASSWORD)
    for role in ROLES:
        if role != "admin":
            svc.add_user(admin, role, PASSWORD, [role])
    svc.close()
    return data, cfg_file


def _token(base: str, name: str) -> str:
    r = httpx.post(f"{base}/api/auth/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _actions(data: Path) -> list[tuple[str, str, str]]:
    con = raw_db(data, read_only=True)
    rows = [(a, o, d) for a, o, d in con.execute("SELECT action, object, details FROM audit_entries ORDER BY seq")]
    con.close()
    return rows


def test_disguised_labels_are_refused_through_the_api(tmp_path: Path, faces_dir: Path) -> None:
    """Finding 3: a note `civil act\\u200bivist, jour\\u200bnalist` was accepted through the API, then approved."""
    data, _ = _prepare(tmp_path)
    with KuzetServe(data, tmp_path / "serve.log") as server:
        token = _token(server.url, "requester")
        form = {
            "list_name": "wanted",
            "name": "Ivan Ivanov",
            "category": "wanted-person",
            "legal_basis": "court-order",
            "reference": "2-345/2026",
            "authority": "Almaty city court",
            "expires": (utc_today() + timedelta(days=30)).isoformat(),
            "note": "civil act\u200bivist, jour\u200bnalist",
        }
        photo = (faces_dir / EXAMPLES / "lin-manuel-miranda.png").read_bytes()
        r = httpx.post(
            f"{server.url}/api/watchlists",
            data=form,
            files={"photo": ("p.png", photo, "image/png")},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        assert r.status_code == 409 and "prohibited label" in r.json()["error"]["message"]
        listed = httpx.get(f"{server.url}/api/watchlists", headers={"Authorization": f"Bearer {token}"}).json()
        assert listed == []
    assert "watchlist.refused" in [a for a, _, _ in _actions(data)]


@pytest.mark.parametrize("workers", [1, 2])
def test_parallel_guesses_are_counted_before_any_is_checked(tmp_path: Path, workers: int) -> None:
    """Finding 5: 30 parallel wrong-then-right sign-ins were all checked, and the right one got in. With two server
    processes, the guesses spread over both still count against one limit (it is kept in the store)."""
    data, _ = _prepare(tmp_path)
    with KuzetServe(data, tmp_path / "serve.log", args=("--workers", str(workers))) as server:

        def guess(i: int) -> int:
            body = {"name": "approver", "password": f"wrong guess {i}"}
            return httpx.post(f"{server.url}/api/auth/login", json=body, timeout=60).status_code

        with ThreadPoolExecutor(29) as pool:
            codes = list(pool.map(guess, range(29)))
        right = httpx.post(f"{server.url}/api/auth/login", json={"name": "approver", "password": PASSWORD})
        assert right.status_code == 429  # the right password, after the guesses: locked
        assert codes.count(401) <= 5 and codes.count(429) >= 24
    checked = [a for a, o, _ in _actions(data) if a == "auth.login_failed" and o == "user:approver"]
    assert len(checked) <= 5  # no more passwords were tried than the limit allows
    assert "auth.locked" in [a for a, _, _ in _actions(data)]
    # The lock is kept in the database: a restart does not clear it.
    with KuzetServe(data, tmp_path / "serve2.log") as server:
        again = httpx.post(f"{server.url}/api/auth/login", json={"name": "approver", "password": PASSWORD})
        assert again.status_code == 429
    # ... and it holds for the command line too.
    proc = subprocess.run(
        [KUZET, "--data-dir", str(data), "login", "approver", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "too many failed sign-ins" in proc.stderr


def test_a_forged_forwarded_for_neither_escapes_the_lock_nor_reaches_the_ledger(tmp_path: Path) -> None:
    """Finding 5: the per-address lock trusted X-Forwarded-For from loopback; the ledger kept the forged address."""
    data, _ = _prepare(tmp_path)
    with KuzetServe(data, tmp_path / "serve.log") as server:
        codes = []
        for i in range(8):  # different accounts, so only the per-address lock can stop this
            r = httpx.post(
                f"{server.url}/api/auth/login",
                json={"name": f"nobody{i}", "password": "guess"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
            codes.append(r.status_code)
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
    recorded = [json.loads(d).get("address") for a, _, d in _actions(data) if a == "auth.login_failed"]
    assert recorded and set(recorded) == {"127.0.0.1"}


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    data, cfg = _prepare(tmp_path, {"api": {"trusted_proxies": ["127.0.0.1"], "secure_cookies": True}})
    with KuzetServe(data, tmp_path / "serve.log", config=cfg) as server:
        for i in range(6):  # six clients behind the proxy, one guess each: nobody is locked
            r = httpx.post(
                f"{server.url}/api/auth/login",
                json={"name": f"nobody{i}", "password": "guess"},
                headers={"X-Forwarded-For": f"198.51.100.7, 203.0.113.{i}"},
            )
            assert r.status_code == 401
        ok = httpx.post(f"{server.url}/api/auth/login", json={"name": "auditor", "password": PASSWORD})
        assert ok.status_code == 200
        cookies = ok.headers.get_list("set-cookie")
        assert cookies and all(("Secure" in c and "HttpOnly" in c) or "kuzet_csrf" in c for c in cookies)
        assert all("Secure" in c for c in cookies)  # `api.secure_cookies: true`
    recorded = {json.loads(d).get("address") for a, _, d in _actions(data) if a == "auth.login_failed"}
    assert recorded == {f"203.0.113.{i}" for i in range(6)}  # the nearest hop the proxy names


PROLOGUE = (
    b'--xx\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
)


def _raw(port: int, head: str, body: bytes = b"", *, chunks: int = 0, chunk: bytes = b"") -> tuple[int, int]:
    """Send a request by hand; returns (status, bytes of body sent before the answer came).

    With `chunks`, the body goes chunked: `body` as the first chunk, then up to `chunks` times `chunk`.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        first = f"{len(body):x}\r\n".encode() + body + b"\r\n" if chunks else body
        s.sendall(head.encode() + b"\r\n" + first)
        sent = len(body)
        s.setblocking(False)
        answer = b""
        deadline = time.monotonic() + 20
        i = 0
        while time.monotonic() < deadline:
            try:
                answer += s.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                break
            if b"\r\n" in answer:
                break
            if i < chunks:
                try:
                    s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    sent += len(chunk)
                except (BlockingIOError, OSError):
                    time.sleep(0.01)
                i += 1
            else:
                time.sleep(0.01)
    assert answer, "no answer"
    return int(answer.split(b" ")[1]), sent


def test_uploads_are_refused_before_their_body_is_read(tmp_path: Path) -> None:
    """Finding 6: a 300 MB multipart body was spooled to disk, then refused with 401."""
    data, cfg = _prepare(tmp_path, {"api": {"max_body_mb": 1}})
    spool = tmp_path / "server-tmp"
    spool.mkdir()
    with KuzetServe(data, tmp_path / "serve.log", config=cfg, env={"TMPDIR": str(spool)}) as server:
        token = _token(server.url, "operator")
        multipart = "Content-Type: multipart/form-data; boundary=xx\r\nHost: kuzet\r\n"
        # No sign-in: 401 before any of the 300 MB arrives.
        status, _ = _raw(
            server.port, f"POST /api/people HTTP/1.1\r\n{multipart}Content-Length: 314572800\r\n", b"--xx\r\n"
        )
        assert status == 401
        # Signed in, but declared larger than the cap: 413 at once.
        status, _ = _raw(
            server.port,
            f"POST /api/people HTTP/1.1\r\n{multipart}Authorization: Bearer {token}\r\nContent-Length: 314572800\r\n",
            b"--xx\r\n",
        )
        assert status == 413
        # Signed in, length not declared (chunked): 413 as soon as the cap is passed, not at the end.
        status, sent = _raw(
            server.port,
            f"POST /api/people HTTP/1.1\r\n{multipart}Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n",
            PROLOGUE,
            chunks=400,
            chunk=b"x" * 65536,
        )
        assert status == 413 and sent < 8 * 2**20
        assert httpx.get(f"{server.url}/api/health").status_code == 200
    spooled = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())
    assert spooled <= 2 * 2**20  # never more than the cap was written to disk


def test_alerts_reach_the_live_stream_only_of_those_who_may_see_them(
    tmp_path: Path, faces_dir: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder
) -> None:
    """Finding 9: requesters and approvers received live alert details although /api/alerts refuses them."""
    from kuzet.governance.watchlists import WatchlistRequest

    data, _ = _prepare(tmp_path)
    svc = share_models(Kuzet(data), centerface, embedder)
    users = {r: svc.login(r, PASSWORD)[0] for r in ROLES}
    entry = svc.watchlist_request(
        users["requester"],
        WatchlistRequest(
            "missing", "Lin", "missing-person", "missing-person-report", "MP-1", "police", utc_today() + timedelta(5)
        ),
        faces_dir / EXAMPLES / "lin-manuel-miranda.png",
    )
    svc.watchlist_approve(users["approver"], entry, reason="report checked")
    roles = ["requester", "approver", "operator", "reviewer"]
    with KuzetServe(data, tmp_path / "serve.log") as server:
        tokens = {r: _token(server.url, r) for r in roles}

        opened = {r: threading.Event() for r in roles}

        def listen(role: str) -> str:
            text = ""
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            deadline = time.monotonic() + 15
            with httpx.stream("GET", f"{server.url}/api/stream", headers=headers, timeout=20) as r:
                for chunk in r.iter_text():
                    text += chunk
                    if "event: status" in text:
                        opened[role].set()  # the stream has noted the newest alert: a later one is news to it
                    if "event: alert" in text or time.monotonic() > deadline:
                        break
            return text

        with ThreadPoolExecutor(len(roles)) as pool:
            streams = {r: pool.submit(listen, r) for r in roles}
            assert all(opened[r].wait(30) for r in roles), "a stream did not open"
            result = svc.analyze(users["operator"], str(faces_dir / EXAMPLES / "lin-manuel-miranda.png"))
            assert result.alert_ids  # a new alert while they listen
            texts = {r: f.result() for r, f in streams.items()}
    svc.close()
    for role, text in texts.items():
        assert ("event: alert" in text) is (role == "reviewer"), role
        assert "event: status" in text


def test_the_audit_page_refuses_a_bad_start_without_failing(tmp_path: Path) -> None:
    data, _ = _prepare(tmp_path)
    with KuzetServe(data, tmp_path / "serve.log") as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/login", data={"name": "auditor", "password": PASSWORD}).status_code == 303
        for bad in ("abc", "-5", "1e9", "99999999999999999999"):
            r = client.get("/audit", params={"from": bad})
            assert r.status_code == 200, bad


def test_an_auditors_monitor_follows_the_api_and_catches_a_rollback(tmp_path: Path) -> None:
    data, _ = _prepare(tmp_path)
    state = tmp_path / "monitor"
    token_file = tmp_path / "auditor.token"

    def monitor(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUZET, "audit", "witness", "--url", url, "--state", str(state), "--token-file", str(token_file)],
            capture_output=True,
            text=True,
            check=False,
        )

    with KuzetServe(data, tmp_path / "serve.log") as server:
        token_file.write_text(_token(server.url, "auditor"))
        first, second = monitor(server.url), monitor(server.url)
        assert first.returncode == 0 and "trusted on first use" in first.stdout, first.stderr
        assert second.returncode == 0 and "consistent" in second.stdout, second.stderr
        # Someone with the database cuts the ledger back under the running server.
        con = raw_db(data)
        keep = con.execute("SELECT max(tree_size) FROM audit_checkpoints").fetchone()[0] - 6
        con.execute("DELETE FROM audit_entries WHERE seq > ?", (keep,))
        con.execute("DELETE FROM audit_checkpoints WHERE tree_size > ?", (keep,))
        con.commit()
        con.close()
        alarm = monitor(server.url)
        assert alarm.returncode == 1 and "ROLLBACK" in alarm.stderr
        assert monitor("http://127.0.0.1:1").returncode == 2  # unreachable: an error, not an alarm


def test_no_upload_route_takes_a_body_before_sign_in(tmp_path: Path) -> None:
    data, _ = _prepare(tmp_path)
    with KuzetServe(data, tmp_path / "serve.log") as server:
        for path, refused in [("/api/people", 401), ("/api/watchlists", 401), ("/people", 303), ("/watchlists", 303)]:
            status, _ = _raw(
                server.port,
                f"POST {path} HTTP/1.1\r\nHost: k\r\nContent-Type: multipart/form-data; boundary=xx\r\n"
                "Content-Length: 52428800\r\n",
                b"--xx\r\n",
            )
            assert status == refused, path
