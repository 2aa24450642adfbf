"""Witnesses: copies of every signed checkpoint held outside the data directory, and the auditor's monitor.

A ledger only its operator can check proves nothing to anyone else. As Certificate Transparency logs are kept
honest, each signed checkpoint is sent, once its transaction has committed, to the witnesses the config names:

- `file`: a JSON-lines file on another path (another disk, an append-only mount, a share the operator cannot edit);
- `mqtt`: the retained topic `kuzet/audit/checkpoint` on a broker (anyone subscribed gets the newest checkpoint);
- `webhook`: a signed JSON POST (HMAC-SHA256, as event webhooks) to an endpoint someone else runs.

The monitor (`kuzet audit witness`) is the other half: an auditor runs it on a schedule against the API (or a
data directory it can read). It fetches the newest checkpoint and a consistency proof from the last one it accepted,
checks the signature and the proof, and stores the new checkpoint. A smaller tree (rollback), a different root for the
same size or a proof that fails (fork), or a key that changed without a hand-over signed by the old key: exit 1.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kuzet.audit import merkle
from kuzet.audit.ledger import AuditLedger, Checkpoint, KeyRotation, rotation_chain
from kuzet.audit.verify import TrustedCheckpoint
from kuzet.config.models import FileWitnessConfig, MqttWitnessConfig, WebhookWitnessConfig, WitnessConfig
from kuzet.config.secrets import Secrets
from kuzet.core.errors import ConfigError, InputError, KuzetError, NotFoundError, StoreError
from kuzet.core.signatures import signed_headers
from kuzet.store.files import append_private, private_dir, write_private

log = logging.getLogger("kuzet.audit")
CHECKPOINT_TOPIC = "kuzet/audit/checkpoint"


class Witness(Protocol):
    """Somewhere a signed checkpoint is sent to."""

    name: str

    def send(self, checkpoint: dict[str, str | int]) -> None:
        """Deliver one signed checkpoint (raises on failure)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class FileWitness:
    """Appends each checkpoint to a file outside the data directory (owner-only, flushed to disk)."""

    def __init__(self, config: FileWitnessConfig) -> None:
        self.path = Path(config.path)
        self.name = f"file:{self.path}"

    def send(self, checkpoint: dict[str, str | int]) -> None:
        """Append one line."""
        private_dir(self.path.parent)
        append_private(self.path, json.dumps(checkpoint, sort_keys=True))

    def close(self) -> None:
        """Nothing to release."""


class MqttWitness:
    """Publishes each checkpoint as the retained message of one topic (QoS 1)."""

    def __init__(self, config: MqttWitnessConfig, secrets: Secrets) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.config = config
        self.name = f"mqtt:{config.host}:{config.port}/{config.topic}"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{config.client_id}-{uuid.uuid4().hex[:8]}")
        user = secrets.optional(config.username, what="audit witness username")
        password = secrets.optional(config.password, what="audit witness password")
        if user is not None:
            client.username_pw_set(user, password)
        if config.tls:
            client.tls_set(ca_certs=config.ca_file)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client = client
        self._connected = False

    def send(self, checkpoint: dict[str, str | int]) -> None:
        """Publish and wait until the broker has it."""
        if not self._connected:
            self._client.connect(self.config.host, self.config.port, keepalive=30)
            self._client.loop_start()
            self._connected = True
        info = self._client.publish(self.config.topic, json.dumps(checkpoint, sort_keys=True), qos=1, retain=True)
        info.wait_for_publish(timeout=5)
        if not info.is_published():
            raise OSError(f"the broker did not acknowledge checkpoint {checkpoint['tree_size']} within 5 s")

    def close(self) -> None:
        """Disconnect."""
        if self._connected:
            self._client.disconnect()
            self._client.loop_stop()
            self._connected = False


class WebhookWitness:
    """POSTs each checkpoint, signed with the webhook's HMAC secret."""

    def __init__(self, config: WebhookWitnessConfig, secrets: Secrets) -> None:
        from urllib.parse import urlsplit

        import httpx

        parts = urlsplit(config.url)
        self.name = f"webhook:{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        self.config = config
        self._secret = secrets.resolve(config.secret, what="audit witness webhook secret")
        self._http = httpx.Client(timeout=config.timeout_s, follow_redirects=False)

    def send(self, checkpoint: dict[str, str | int]) -> None:
        """One signed POST; any answer other than 2xx is a failure."""
        body = json.dumps({"kind": "checkpoint", "data": checkpoint}, sort_keys=True).encode()
        headers = signed_headers(self._secret, body, kind="checkpoint", delivery=uuid.uuid4().hex)
        response = self._http.post(self.config.url, content=body, headers=headers)
        if response.status_code >= 300:
            raise OSError(f"HTTP {response.status_code}")

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()


def build_witness(config: WitnessConfig, secrets: Secrets) -> Witness:
    """The witness a config entry names (secrets resolved now: a missing one fails at once)."""
    if isinstance(config, FileWitnessConfig):
        return FileWitness(config)
    if isinstance(config, MqttWitnessConfig):
        return MqttWitness(config, secrets)
    return WebhookWitness(config, secrets)


def check_outside(configs: list[WitnessConfig], data_dir: Path) -> None:
    """Refuse a file witness inside the data directory: whoever holds the directory would hold the witness too."""
    root = data_dir.resolve()
    for c in configs:
        if isinstance(c, FileWitnessConfig) and Path(c.path).resolve().is_relative_to(root):
            raise ConfigError(
                f"the witness file {c.path} lies inside the data directory {data_dir}",
                hint="put witness files on another disk, mount or machine: a witness the operator holds proves nothing",
            )


class WitnessPublisher:
    """Sends committed checkpoints to every witness in order, from a thread of its own.

    A slow witness never delays an action; `close` delivers what is queued first. Failures are logged and the next
    checkpoint is still sent: each one commits to the whole ledger before it.
    """

    def __init__(self, witnesses: list[Witness], *, max_queue: int = 10_000) -> None:
        self.witnesses = witnesses
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._max_queue = max_queue
        self._queue: queue.Queue[dict[str, str | int] | None] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def publish(self, cp: Checkpoint) -> None:
        """Queue a committed checkpoint for every witness."""
        if not self.witnesses:
            return
        with self._lock:
            if self._queue is None:
                self._queue = queue.Queue(maxsize=self._max_queue)
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="audit-witnesses", daemon=True
                )
                self._thread.start()
            q = self._queue
        while True:
            try:
                q.put_nowait(cp.signed_json())
                return
            except queue.Full:
                try:
                    q.get_nowait()  # the oldest goes: the newer checkpoint covers what it covered
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self, q: queue.Queue[dict[str, str | int] | None]) -> None:
        while (item := q.get()) is not None:
            for w in self.witnesses:
                try:
                    w.send(item)
                    self.sent += 1
                except Exception as exc:  # any failure of a witness: logged, never fatal to kuzet
                    self.failed += 1
                    log.warning("witness %s did not take checkpoint %s: %s", w.name, item["tree_size"], exc)

    def flush(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout` seconds); a later `publish` starts sending again."""
        with self._lock:
            q, thread = self._queue, self._thread
            self._queue, self._thread = None, None
        if q is not None and thread is not None:
            q.put(None)  # after everything queued so far
            thread.join(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout` seconds), then release every witness."""
        self.flush(timeout)
        for w in self.witnesses:
            try:
                w.close()
            except Exception as exc:
                log.warning("witness %s did not close cleanly: %s", w.name, exc)


# -- the auditor's monitor ------------------------------------------------------------------------------------


class LedgerSource(Protocol):
    """Where the monitor reads a ledger's checkpoints and proofs from."""

    def latest(self) -> TrustedCheckpoint:
        """The newest signed checkpoint."""
        ...

    def consistency(self, first: int, second: int) -> list[bytes]:
        """Consistency proof from the tree of `first` entries to the tree of `second`."""
        ...

    def rotations(self) -> list[KeyRotation]:
        """Every signing-key hand-over recorded in the ledger."""
        ...


class HttpLedgerSource:
    """A kuzet API (`kuzet serve`), read with an auditor's bearer token."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 30.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(
            timeout=timeout_s, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False
        )

    def _get(self, path: str, **params: int) -> Any:
        import httpx

        try:
            response = self._http.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise InputError(
                f"cannot reach {self.url}: {exc}", hint="check the URL and that kuzet serve runs"
            ) from None
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise InputError(
                f"{self.url}{path} answered {response.status_code}: {message}",
                hint="use an auditor's token (KUZET_TOKEN or --token-file)",
            )
        return response.json()

    def latest(self) -> TrustedCheckpoint:
        """GET /api/audit/checkpoint/latest."""
        return TrustedCheckpoint.from_json(self._get("/api/audit/checkpoint/latest"), label=self.url)

    def consistency(self, first: int, second: int) -> list[bytes]:
        """GET /api/audit/consistency."""
        data = self._get("/api/audit/consistency", first=first, second=second)
        return [bytes.fromhex(h) for h in data["proof"]]

    def rotations(self) -> list[KeyRotation]:
        """GET /api/audit/key-rotations."""
        rows = self._get("/api/audit/key-rotations")
        return [
            KeyRotation(int(r["seq"]), str(r["old_public_key"]), str(r["new_public_key"]), str(r["signature"]))
            for r in rows
        ]


class LocalLedgerSource:
    """A data directory this machine can read, or the PostgreSQL store of KUZET_DATABASE_URL (read-only)."""

    def __init__(self, data_dir: Path) -> None:
        from kuzet.config.models import DatabaseConfig
        from kuzet.config.secrets import Secrets, database_url

        self.url = database_url(DatabaseConfig(), Secrets(), data_dir)  # KUZET_DATABASE_URL: a PostgreSQL store
        if self.url.startswith("sqlite") and not (data_dir / "kuzet.db").is_file():
            raise InputError(f"{data_dir} holds no kuzet database", hint="give a kuzet data directory or an API URL")
        self.label = str(data_dir)

    @contextmanager
    def _read(self) -> Iterator[AuditLedger]:
        """The ledger in a read transaction of a connection opened for it (the monitor runs briefly)."""
        from kuzet.store.db import Database

        db = Database(self.url)
        try:
            with db.read() as s:
                yield AuditLedger(s)
        finally:
            db.dispose()

    def latest(self) -> TrustedCheckpoint:
        """The newest checkpoint in the database."""
        with self._read() as ledger:
            cp = ledger.latest_checkpoint()
        if cp is None or not cp.public_key:
            raise NotFoundError(f"{self.label} has no checkpoint signed with a named key", hint="run kuzet once")
        return TrustedCheckpoint.from_json(cp.signed_json(), label=self.label)

    def consistency(self, first: int, second: int) -> list[bytes]:
        """Computed from the entries."""
        with self._read() as ledger:
            leaves = ledger.leaves(second)
        if len(leaves) < second:
            raise StoreError(f"{self.label} holds fewer than {second} entries", hint="the ledger was cut back")
        return merkle.consistency_proof(first, leaves)

    def rotations(self) -> list[KeyRotation]:
        """From the ledger."""
        with self._read() as ledger:
            return ledger.key_rotations()


@dataclass(frozen=True, slots=True)
class WatchResult:
    """What one monitor run found."""

    ok: bool
    message: str
    checkpoint: TrustedCheckpoint | None


def watch(source: LedgerSource, state_dir: Path) -> WatchResult:
    """Fetch the newest checkpoint, check that it extends the last one accepted, and keep it (see the module doc)."""
    private_dir(state_dir)
    state = state_dir / "latest.json"
    new = source.latest()
    if not new.signature_ok():
        return WatchResult(False, f"the newest checkpoint ({new.tree_size} entries) is not validly signed", new)
    last = None
    if state.is_file():
        try:
            last = TrustedCheckpoint.from_json(json.loads(state.read_text(encoding="utf-8")), label=str(state))
        except (ValueError, KuzetError) as exc:
            raise InputError(f"the monitor's state {state} is damaged: {exc}", hint="restore it from backup") from None

    def accept(message: str) -> WatchResult:
        append_private(state_dir / "checkpoints.jsonl", json.dumps(new.to_json(), sort_keys=True))
        write_private(state, json.dumps(new.to_json(), sort_keys=True).encode(), sync=True)
        return WatchResult(True, message, new)

    if last is None:
        return accept(f"first checkpoint: {new.tree_size} entries, root {new.root_hash} (trusted on first use)")
    if new.tree_size < last.tree_size:
        return WatchResult(
            False,
            f"ROLLBACK: the ledger now has {new.tree_size} entries, but a checkpoint of {last.tree_size} was signed",
            new,
        )
    if (
        new.public_key != last.public_key
        and rotation_chain(source.rotations(), last.public_key, new.public_key) is None
    ):
        return WatchResult(
            False,
            f"KEY CHANGED: checkpoints were signed by {last.key_id} and now by {new.key_id}, with no hand-over "
            "signed by the old key",
            new,
        )
    if new.tree_size == last.tree_size:
        if new.root_hash != last.root_hash:
            return WatchResult(False, f"FORK: two different roots for {new.tree_size} entries", new)
        return accept(f"unchanged: {new.tree_size} entries")
    proof = source.consistency(last.tree_size, new.tree_size)
    if not merkle.verify_consistency(
        last.tree_size, new.tree_size, bytes.fromhex(last.root_hash), bytes.fromhex(new.root_hash), proof
    ):
        return WatchResult(
            False,
            f"FORK: the ledger of {new.tree_size} entries does not extend the checkpoint of {last.tree_size} "
            "(history before it was changed)",
            new,
        )
    return accept(f"consistent: {last.tree_size} -> {new.tree_size} entries, root {new.root_hash}")
