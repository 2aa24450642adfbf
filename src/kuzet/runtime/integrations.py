"""Where `kuzet run` sends what it stores: an MQTT broker and signed webhooks.

Topics (under `run.mqtt.topic_prefix`, default `kuzet`), JSON payloads:

| topic | retained | payload |
|---|---|---|
| `kuzet/status` | yes | `online` / `offline` (the broker publishes `offline` if kuzet vanishes) |
| `kuzet/cameras/CAMERA/status` | yes | camera state, reason, since, frames analysed, reconnects |
| `kuzet/events/CAMERA` | no | a match against the consented gallery |
| `kuzet/alerts/CAMERA` | no | a candidate watchlist alert awaiting review (never names anyone) |
| `kuzet/passages/CAMERA` | no | a vehicle or person crossing a counting line |
| `kuzet/violations/CAMERA` | no | a traffic violation with its evidence hash |

Webhooks POST `{"kind": ..., "camera": ..., "data": {...}}` with `X-Kuzet-Timestamp`, `X-Kuzet-Delivery` and
`X-Kuzet-Signature: sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` under the webhook's secret (`verify_signature`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from kuzet.config.models import MqttConfig, WebhookConfig
from kuzet.config.secrets import Secrets
from kuzet.core.signatures import sign, signed_headers, verify_signature
from kuzet.core.types import JsonValue

log = logging.getLogger("kuzet.run")
__all__ = ["Integrations", "JsonValue", "MqttPublisher", "Notice", "WebhookSender", "sign", "verify_signature"]

PERSONAL_FIELDS = {"identity": "include_identity", "plate": "include_plates"}
"""Payload fields an integration sends only when its config says so."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something stored (or a camera state change) that integrations may announce."""

    kind: str
    """event | alert | passage | violation | camera"""
    camera: str
    data: dict[str, JsonValue]


def _visible(notice: Notice, *, include_identity: bool, include_plates: bool) -> dict[str, JsonValue]:
    allowed = {"include_identity": include_identity, "include_plates": include_plates}
    return {k: v for k, v in notice.data.items() if k not in PERSONAL_FIELDS or allowed[PERSONAL_FIELDS[k]]}


class MqttPublisher:
    """One MQTT connection (paho), reconnecting by itself; publications wait in its queue while disconnected."""

    def __init__(self, config: MqttConfig, secrets: Secrets) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.config = config
        self.published = 0
        self.connected = False
        self._prefix = config.topic_prefix.rstrip("/")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id)
        user = secrets.optional(config.username, what="run.mqtt.username")
        password = secrets.optional(config.password, what="run.mqtt.password")
        if user is not None:
            client.username_pw_set(user, password)
        if config.tls:
            client.tls_set(ca_certs=config.ca_file)
        client.will_set(f"{self._prefix}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(10_000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        client.connect_async(config.host, config.port, keepalive=30)
        client.loop_start()

    def _on_connect(self, client: object, userdata: object, flags: object, reason: object, props: object) -> None:
        self.connected = not getattr(reason, "is_failure", False)
        if self.connected:
            self._client.publish(f"{self._prefix}/status", "online", qos=1, retain=True)
        else:
            log.warning("MQTT broker %s:%s refused the connection: %s", self.config.host, self.config.port, reason)

    def _on_disconnect(self, client: object, userdata: object, flags: object, reason: object, props: object) -> None:
        self.connected = False

    def _on_publish(self, client: object, userdata: object, mid: int, reason: object, props: object) -> None:
        self.published += 1

    def topic(self, notice: Notice) -> str:
        """The topic a notice goes to."""
        if notice.kind == "camera":
            return f"{self._prefix}/cameras/{notice.camera}/status"
        return f"{self._prefix}/{notice.kind}s/{notice.camera}"

    def publish(self, notice: Notice) -> None:
        """Queue one notice for the broker (camera states are retained: a new subscriber sees the current one)."""
        data = _visible(
            notice, include_identity=self.config.include_identity, include_plates=self.config.include_plates
        )
        payload = json.dumps({"kind": notice.kind, "camera": notice.camera, "data": data}, sort_keys=True)
        self._client.publish(self.topic(notice), payload, qos=self.config.qos, retain=notice.kind == "camera")

    def close(self) -> None:
        """Say `offline`, flush and disconnect."""
        try:
            info = self._client.publish(f"{self._prefix}/status", "offline", qos=1, retain=True)
            if self.connected:
                info.wait_for_publish(timeout=3)
        except (ValueError, RuntimeError) as exc:  # the queue is full or the broker just went away
            log.warning("MQTT: could not say offline: %s", exc)
        finally:
            self._client.disconnect()
            self._client.loop_stop()


class WebhookSender:
    """Delivers notices to one endpoint in order, from its own thread, retrying with backoff until it answers."""

    def __init__(
        self,
        config: WebhookConfig,
        secrets: Secrets,
        *,
        max_queue: int = 10_000,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        import httpx

        self.config = config
        parts = urlsplit(config.url)
        self.label = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        """The endpoint without path or query (which may carry tokens): what logs show."""
        self._secret = secrets.resolve(config.secret, what=f"webhook {self.label} secret")
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Notice | None] = queue.Queue(maxsize=max_queue)
        self._http = httpx.Client(timeout=config.timeout_s, follow_redirects=False)
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._thread = threading.Thread(target=self._run, name=f"webhook:{self.label}", daemon=True)
        self._thread.start()

    def send(self, notice: Notice) -> None:
        """Queue a notice if this webhook wants its kind (a full queue drops the oldest, counted)."""
        if notice.kind not in self.config.kinds:
            return
        while True:
            try:
                self._queue.put_nowait(notice)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            notice = self._queue.get()
            if notice is None:
                return
            self._deliver(notice)

    def _deliver(self, notice: Notice) -> None:
        import httpx

        data = _visible(
            notice, include_identity=self.config.include_identity, include_plates=self.config.include_plates
        )
        body = json.dumps({"kind": notice.kind, "camera": notice.camera, "data": data}, sort_keys=True).encode()
        delivery = uuid.uuid4().hex
        for attempt in range(self.config.max_attempts):
            if attempt:
                delay = min(60.0, 0.5 * 2 ** (attempt - 1)) * (1 - 0.3 * random.random())
                self._sleep(delay)
            headers = signed_headers(self._secret, body, kind=notice.kind, delivery=delivery)
            try:
                response = self._http.post(self.config.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("webhook %s attempt %d failed: %s", self.label, attempt + 1, type(exc).__name__)
                continue
            if response.status_code < 300:
                self.delivered += 1
                return
            if response.status_code not in (408, 425, 429) and response.status_code < 500:
                log.warning("webhook %s refused delivery %s: HTTP %d", self.label, delivery, response.status_code)
                break  # the endpoint says the request is wrong: retrying cannot help
        self.failed += 1

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout` seconds), then stop."""
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
                    self.dropped += 1
        self._thread.join(timeout)
        self._stopping.set()
        self._thread.join(1.0)
        self._http.close()


class Integrations:
    """Every configured destination; `send` fans a notice out to all of them."""

    def __init__(self, mqtt: MqttPublisher | None, webhooks: list[WebhookSender]) -> None:
        self.mqtt = mqtt
        self.webhooks = webhooks

    @classmethod
    def from_config(cls, mqtt: MqttConfig | None, webhooks: list[WebhookConfig], secrets: Secrets) -> Integrations:
        """Connect what the config names (secrets resolved now: a missing one fails before any camera starts)."""
        senders = [WebhookSender(w, secrets) for w in webhooks]
        return cls(MqttPublisher(mqtt, secrets) if mqtt is not None else None, senders)

    def send(self, notice: Notice) -> None:
        """Publish to MQTT and queue for every webhook that wants it."""
        if self.mqtt is not None:
            self.mqtt.publish(notice)
        for w in self.webhooks:
            w.send(notice)

    def close(self) -> None:
        """Flush and disconnect everything."""
        for w in self.webhooks:
            w.close()
        if self.mqtt is not None:
            self.mqtt.close()
