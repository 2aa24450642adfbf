"""`kuzet run`: one worker process per live camera, restarted when it dies or hangs, with status and integrations.

The supervisor does no analysis itself. It starts the workers (local processes, or actors on a Ray cluster: see
`runtime.engines`), reads their status, publishes camera states and relays what the workers stored to MQTT and
webhooks from the outbox (`runtime.outbox`), writes `DATA_DIR/run/status.json` every second (the API's `/metrics` and
`/api/cameras/status` read it), runs retention on schedule, and stops everything cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kuzet.config.models import CameraConfig, CenterFaceConfig
from kuzet.config.secrets import Secrets, camera_url
from kuzet.core.errors import ConfigError, KuzetError
from kuzet.ingest.sources import NETWORK_SCHEMES, endpoint, redact_url
from kuzet.runtime.detector import DetectorStats, SharedDetector
from kuzet.runtime.engines import Engine, ProcessEngine, WorkerHandle
from kuzet.runtime.integrations import Integrations, Notice
from kuzet.runtime.outbox import OutboxRelay
from kuzet.runtime.worker import StatusUpdate, WorkerSpec
from kuzet.store.status import CameraStatus, ServiceStatus, write_status

if TYPE_CHECKING:
    from kuzet.core.types import User
    from kuzet.services.container import Services

log = logging.getLogger("kuzet.run")

RESTART_MAX_S = 30.0


@dataclass(slots=True)
class _Slot:
    """One camera's worker and what the supervisor knows about it."""

    spec: WorkerSpec
    worker: WorkerHandle | None = None
    current: CameraStatus | None = None
    carried: CameraStatus | None = None
    """Counters of earlier workers of this camera (so totals never go down)."""
    restarts: int = 0
    crashes: int = 0
    """Deaths in a row (reset once a worker has run for a minute): what backoff and `failed` go by."""
    restart_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    heard_at: float = field(default_factory=time.monotonic)
    """When the supervisor last heard from the worker (its own clock: a worker's node may keep another time)."""
    last_published: tuple[str, str] = ("", "")

    def status(self) -> CameraStatus:
        cur = self.current or CameraStatus(camera=self.spec.camera)
        out = cur.plus(self.carried) if self.carried is not None else cur
        out.worker_restarts = self.restarts
        return out


def live_cameras(cameras: list[CameraConfig], names: list[str] | None) -> list[CameraConfig]:
    """The cameras `kuzet run` starts: enabled ones (or those named), each with a network URL.

    Raises:
        ConfigError: A named camera is unknown, or a camera has no live URL.

    """
    known = {c.name: c for c in cameras}
    if names:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                f"no camera called {', '.join(unknown)} in the config",
                hint=f"configured cameras: {', '.join(known) or 'none'}",
            )
        chosen = [known[n] for n in names]
    else:
        chosen = [c for c in cameras if c.enabled]
    if not chosen:
        raise ConfigError("no cameras to run", hint="add cameras with an rtsp:// source to the config (docs/live.md)")
    bad = [c.name for c in chosen if not c.source.startswith(NETWORK_SCHEMES)]
    if bad:
        raise ConfigError(
            f"camera(s) {', '.join(bad)} have no live stream URL",
            hint="kuzet run needs rtsp://, http(s):// or rtmp:// sources; analyse files with kuzet analyze",
        )
    return chosen


class Supervisor:
    """Runs the configured live cameras until `stop()` (or SIGTERM/SIGINT through `run_forever`)."""

    def __init__(
        self,
        services: Services,
        actor: User,
        *,
        secrets: Secrets,
        cameras: list[str] | None = None,
        integrations: Integrations | None = None,
        engine: Engine | None = None,
    ) -> None:
        services.uow.require(actor, "live.run")
        self.services = services
        self.ctx = ctx = services.ctx
        self.actor = actor
        self.config = ctx.config
        chosen = live_cameras(ctx.config.cameras, cameras)
        services.cameras.check_purposes(actor, chosen)
        run = ctx.config.run
        origin = f"run@{socket.gethostname()}"
        self.engine = engine or ProcessEngine()
        shared = self._shared_detector_config(chosen)
        specs = [
            WorkerSpec(
                data_dir=str(ctx.data_dir),
                config_json=ctx.config.model_dump_json(),
                camera=c.name,
                actor=actor.name,
                url=camera_url(c, secrets),  # a missing secret fails here, before anything starts
                record_url=camera_url(c, secrets, record=True),
                fps=c.fps or run.default_fps,
                origin=f"{origin}/{c.name}",
                sharing=len(chosen),
            )
            for c in chosen
        ]
        self.integrations = integrations or Integrations.from_config(run.mqtt, run.webhooks, secrets)
        self.relay = OutboxRelay(services, list(self.integrations.destinations()))
        self.detector = SharedDetector(shared, hang_timeout_s=run.hang_timeout_s) if shared is not None else None
        self.slots = {s.camera: _Slot(s) for s in specs}
        self.started = time.time()
        self.stopping = False
        self._last_write = 0.0
        self._last_purge = time.monotonic()

    def _shared_detector_config(self, cameras: list[CameraConfig]) -> CenterFaceConfig | None:
        """The detector the face cameras share (`run.shared_detector`, when some camera analyses faces), or None.

        Raises:
            ConfigError: Asked for on a Ray cluster, or with a face detector other than CenterFace.

        """
        run, detector = self.config.run, self.config.face_detector
        if not run.shared_detector or not any("faces" in c.analytics for c in cameras):
            return None
        if self.engine.name != "local":
            raise ConfigError(
                "run.shared_detector works with the local engine only",
                hint="on a Ray cluster each camera's actor runs its own detector: set run.shared_detector: false",
            )
        if detector.type != "centerface":
            raise ConfigError(
                f"run.shared_detector serves CenterFace, but face_detector.type is {detector.type}",
                hint="use face_detector.type: centerface, or set run.shared_detector: false",
            )
        return detector

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Record the start in the ledger and start every worker."""
        cams = [self.ctx.camera_config(n) for n in self.slots]
        run = self.config.run
        details: dict[str, str | int] = {
            "cameras": ",".join(f"{c.name}={redact_url(c.source)}" for c in cams),
            "analytics": ",".join(f"{c.name}:{'+'.join(c.analytics)}" for c in cams),
            "purposes": "; ".join(f"{c.name}: {c.purpose}" for c in cams),
            "recording": ",".join(f"{c.name}:{c.record.mode}" for c in cams),
            "mqtt": f"{run.mqtt.host}:{run.mqtt.port}/{run.mqtt.topic_prefix}" if run.mqtt else "",
            "webhooks": ",".join(endpoint(w.url) for w in run.webhooks),
            "pid": os.getpid(),
        }
        mains = ",".join(f"{c.name}={redact_url(c.record_source)}" for c in cams if c.record_source)
        if mains:  # the main streams recorded and cut for snapshots are where data comes from too
            details["main_streams"] = mains
        if self.detector is not None:
            details["shared_detector"] = "centerface"
        self.services.cameras.record_service_event(self.actor, "service.started", details=details)
        self.relay.start()  # each destination's cursor, before any worker can commit a notice
        if self.detector is not None:
            self.detector.start()  # before the cameras, which connect to it; its socket's folder is made here
            for slot in self.slots.values():
                slot.spec = replace(slot.spec, detector=self.detector.address, detector_key=self.detector.authkey)
        for slot in self.slots.values():
            self._spawn(slot)
        self._write(force=True)

    def _spawn(self, slot: _Slot) -> None:
        w = self.engine.start(slot.spec)
        slot.worker = w
        slot.started_at = slot.heard_at = time.monotonic()
        slot.current = CameraStatus(camera=slot.spec.camera, source=self._source(slot))
        slot.current.pid, slot.current.node = w.pid, w.node

    def _source(self, slot: _Slot) -> str:
        return redact_url(self.ctx.camera_config(slot.spec.camera).source)

    def step(self, timeout: float = 0.25) -> None:
        """Handle messages for up to `timeout` seconds, then look after the workers.

        Nothing here may stop the service: a busy database or a full disk is logged and tried again next time.
        """
        deadline = time.monotonic() + timeout
        while True:
            got = 0
            for slot in self.slots.values():
                got += self._read(slot)
            if time.monotonic() >= deadline:
                break
            if not got:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        if not self.stopping:
            self._watch()
        self.relay.pump()
        try:
            self._write()
            if time.monotonic() - self._last_purge >= min(60.0, self.config.run.retention_interval_s):
                self._last_purge = time.monotonic()
                self.services.retention.maybe_purge()
        except (KuzetError, OSError) as exc:
            log.error("kuzet run: %s (retrying)", exc)

    def _read(self, slot: _Slot, limit: int = 100) -> int:
        """Handle up to `limit` waiting messages from one worker."""
        if slot.worker is None:
            return 0
        messages = slot.worker.messages(limit)
        for msg in messages:
            try:
                self._handle(slot, msg)
            except Exception:
                log.exception("kuzet run: a message from camera %s could not be handled", slot.spec.camera)
        return len(messages)

    def _handle(self, slot: _Slot, msg: object) -> None:
        if isinstance(msg, StatusUpdate) and slot.worker is not None:
            slot.current = msg.status
            slot.heard_at = time.monotonic()
            self._publish_state(slot)

    def _publish_state(self, slot: _Slot) -> None:
        st = slot.status()
        key = (st.state, st.reason)
        if key != slot.last_published:
            slot.last_published = key
            log.info("camera %s: %s %s", st.camera, st.state, st.reason)
            self.integrations.send(Notice(kind="camera", camera=st.camera, data=dict(st.payload())))

    def _watch(self) -> None:
        if self.detector is not None:
            happened = self.detector.watch()
            if happened:
                log.warning("kuzet run: %s", happened)
        now = time.monotonic()
        hang = self.config.run.hang_timeout_s
        for slot in self.slots.values():
            w = slot.worker
            if w is None:
                if now >= slot.restart_at:
                    self._spawn(slot)
                continue
            if w.alive():
                silent = now - slot.heard_at
                if silent > hang and now - slot.started_at > hang:
                    log.warning("camera %s: worker silent for %.0f s, killing it", slot.spec.camera, silent)
                    w.kill()
                    self._died(slot, f"worker hung (silent for {silent:.0f} s) and was killed")
                continue
            self._read(slot)  # what it said before it died
            self._died(slot, w.ended())

    def _died(self, slot: _Slot, reason: str) -> None:
        if slot.current is not None:
            last = slot.current
            slot.carried = last.plus(slot.carried) if slot.carried is not None else last
        slot.restarts += 1
        slot.crashes = 1 if time.monotonic() - slot.started_at > 60.0 else slot.crashes + 1
        slot.worker = None
        delay = min(RESTART_MAX_S, 0.5 * 2 ** min(slot.crashes - 1, 10))
        slot.restart_at = time.monotonic() + delay
        state = "failed" if slot.crashes >= self.config.run.failed_after else "restarting"
        slot.current = CameraStatus(camera=slot.spec.camera, source=self._source(slot))
        slot.current.set_state(state, f"{reason}; restarting in {delay:.1f} s")
        self._publish_state(slot)

    def statuses(self) -> list[CameraStatus]:
        """Every camera's status, counters summed over its workers."""
        return [slot.status() for slot in self.slots.values()]

    def service_status(self) -> ServiceStatus:
        """The whole service's status."""
        mqtt = self.integrations.mqtt
        hooks = self.integrations.webhooks
        shared = self.detector.totals() if self.detector is not None else DetectorStats()
        return ServiceStatus(
            pid=os.getpid(),
            started=self.started,
            updated=time.time(),
            state="stopping" if self.stopping else "running",
            cameras=self.statuses(),
            mqtt_published=mqtt.published if mqtt is not None else 0,
            mqtt_connected=bool(mqtt and mqtt.connected),
            webhooks_delivered=sum(w.delivered for w in hooks),
            webhooks_failed=sum(w.failed for w in hooks),
            detector_pid=self.detector.pid if self.detector is not None else 0,
            detector_frames=shared.frames,
            detector_calls=shared.calls,
            detector_largest_batch=shared.largest_batch,
            detector_restarts=self.detector.restarts if self.detector is not None else 0,
        )

    def _write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_write >= 1.0:
            self._last_write = now
            write_status(self.ctx.data_dir, self.service_status())

    def stop(self, timeout: float = 20.0) -> None:
        """Ask every worker to finish (they commit what they decided), wait, then end those that do not."""
        self.stopping = True
        self.engine.stop_all()
        try:
            deadline = time.monotonic() + timeout
            while any(s.worker is not None and s.worker.alive() for s in self.slots.values()):
                if time.monotonic() > deadline:
                    break
                self.step(0.2)
            for slot in self.slots.values():
                w = slot.worker
                if w is not None and w.alive():
                    w.terminate()
            self.step(0.0)  # the last statuses and notices
        finally:
            if self.detector is not None:
                self.detector.stop()  # after the cameras (their last frames were still detected), whatever happened
        for slot in self.slots.values():
            if slot.current is not None:
                slot.current.set_state("stopped", "kuzet run stopped")
            self._publish_state(slot)
        totals = self.statuses()
        self.services.cameras.record_service_event(
            self.actor,
            "service.stopped",
            details={
                "frames_analysed": sum(s.frames_analysed for s in totals),
                "events": sum(s.events for s in totals),
                "alerts": sum(s.alerts for s in totals),
                "reconnects": sum(s.reconnects for s in totals),
                "worker_restarts": sum(s.worker_restarts for s in totals),
                "published": (self.integrations.mqtt.published if self.integrations.mqtt else 0)
                + sum(w.delivered for w in self.integrations.webhooks),
            },
        )
        self.relay.pump(force=True)  # what the workers committed last
        try:
            self.integrations.close()  # waits (a while) for what is on its way
            self.relay.record_progress()
        except Exception:
            log.exception("kuzet run: integrations did not close cleanly")
        status = self.service_status()
        status.state = "stopped"
        write_status(self.ctx.data_dir, status)
        self.engine.close()

    def run_forever(self) -> None:
        """Start, then supervise until SIGTERM or SIGINT; always stops the workers."""
        asked = {"stop": False}

        def ask(signum: int, frame: object) -> None:
            asked["stop"] = True

        previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not asked["stop"]:
                self.step(0.25)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
