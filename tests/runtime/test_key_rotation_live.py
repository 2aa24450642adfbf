"""`kuzet keys rotate` while `kuzet serve` and `kuzet run` are running loses nothing (finding 4).

Before: the running processes kept encrypting with the old key, which the rotation had deleted; afterwards
unredacted media could not be read and every `kuzet analyze` failed on the template written after the rotation.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from kuzet.app import Kuzet
from kuzet.config.models import KuzetConfig
from kuzet.store.crypto import DataCipher, blob_key_id
from tests.conftest import PASSWORD, add_user, wait_until
from tests.runtime.test_run import LIN, PURPOSE, event_ids, make_service
from tests.support.rawdb import raw_db
from tests.support.serve import KUZET, KuzetServe
from tests.support.servers import RtspServer

pytestmark = pytest.mark.store


def _recordings(root: Path) -> list[Path]:
    return sorted((root / "media" / "recordings").rglob("*.mp4.enc"))


def test_rotating_keys_while_serve_and_run_are_running_loses_nothing(
    tmp_path: Path, faces_dir: Path, rtsp: RtspServer
) -> None:
    root = tmp_path / "data"
    config = {
        "cameras": [
            {
                "name": "stage",
                "source": rtsp.url("stage"),
                "purpose": PURPOSE,
                "record": {"mode": "events", "segment_s": 2, "pre_roll_s": 1, "post_roll_s": 1},
            }
        ],
        "run": {"reconnect_initial_s": 0.2, "reconnect_max_s": 0.5, "stats_interval_s": 1.0},
    }
    svc, _ = make_service(root, config, faces_dir)
    add_user(svc, "olga", "operator")
    add_user(svc, "timur", "auditor")
    _, admin_token = svc.login("admin", PASSWORD)
    svc.close()
    config_file = tmp_path / "live.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "KUZET_TOKEN": admin_token}
    with (tmp_path / "run.log").open("ab") as log:
        run = subprocess.Popen(
            [KUZET, "--data-dir", str(root), "run", "--config", str(config_file)],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        with KuzetServe(root, tmp_path / "serve.log", config=config_file) as server:
            wait_until(lambda: bool(event_ids(root)) and bool(_recordings(root)), 120, "an event and a recording")
            before = max(event_ids(root))
            rotated = subprocess.run(
                [KUZET, "--data-dir", str(root), "keys", "rotate"], env=env, capture_output=True, text=True, check=False
            )
            assert rotated.returncode == 0, rotated.stderr
            new_key = DataCipher.load(root / "keys", create=False).active
            # Both running processes keep writing: the camera more events (encrypted originals) and recordings,
            # the API an enrolment (an encrypted template and photo).
            wait_until(lambda: max(event_ids(root)) > before + 1, 120, "events committed after the rotation")
            login = {
                n: httpx.post(f"{server.url}/api/auth/login", json={"name": n, "password": PASSWORD})
                for n in (
                    "olga",
                    "enrolment-approver",
                )
            }
            tokens = {n: r.json()["token"] for n, r in login.items()}
            photo = (faces_dir / "face_recognition_examples" / "alex-lacamoire.png").read_bytes()
            enrolled = httpx.post(
                f"{server.url}/api/people",
                data={"name": "Alex Lacamoire", "consent": "signed form 18"},
                files={"photos": ("a.png", photo, "image/png")},
                headers={"Authorization": f"Bearer {tokens['olga']}"},
                timeout=120,
            )
            assert enrolled.status_code == 201, enrolled.text
            approved = httpx.post(
                f"{server.url}/api/people/{enrolled.json()['id']}/approve",
                json={"reason": "form 18 checked"},
                headers={"Authorization": f"Bearer {tokens['enrolment-approver']}"},
            )
            assert approved.status_code == 200, approved.text
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(60)

    # Everything written before, during and after the rotation is readable with the key ring on disk.
    ring = DataCipher.load(root / "keys", create=False)
    assert ring.active == new_key
    fresh = Kuzet(root, KuzetConfig.model_validate(config))
    for rel in fresh.media.encrypted_files():
        assert fresh.media.key_id(rel) in ring.keys, rel
        assert fresh.media.read_encrypted(rel, cipher=ring)
    with raw_db(root) as db:
        blobs = [b for (b,) in db.execute("SELECT vector FROM face_templates")]
    assert len(blobs) == 2 and all(blob_key_id(b) in ring.keys for b in blobs)
    auditor = fresh.login("timur", PASSWORD)[0]
    newest = fresh.events(auditor, limit=1)[0]
    assert fresh.media_export(auditor, "event", newest.event_id, unredacted=True, justification="after rotation")
    fresh.close()
    # ... and `kuzet analyze` works, matching against templates written before and after the rotation.
    analysed = subprocess.run(
        [KUZET, "--data-dir", str(root), "analyze", str(faces_dir / LIN)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert analysed.returncode == 0 and "Lin-Manuel Miranda" in analysed.stdout, analysed.stderr
