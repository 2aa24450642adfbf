"""Prometheus metrics of `kuzet run`, rendered from its status (served at `/metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from kuzet.store.status import LATENCY_BUCKETS, STATES, ServiceStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_COUNTERS = (
    ("frames_decoded", "Frames decoded from the camera stream"),
    ("frames_analysed", "Frames analysed (after sampling to the camera's fps)"),
    ("frames_dropped", "Frames dropped because analysis was behind (the oldest waiting frame goes)"),
    ("frames_gated", "Analysed frames on which motion gating skipped the face detector"),
    ("frames_searched", "Analysed frames on which the face search found no face, so the face detector did not run"),
    ("frames_regions", "Analysed frames on which the face detector looked only where the frame moved"),
    ("frames_followed", "Analysed frames on which the face detector looked only as finely as the open tracks needed"),
    ("reconnects", "Connections reopened (stream ended, failed or stalled)"),
    ("worker_restarts", "Worker processes replaced after they died or hung"),
    ("events", "Gallery match events stored"),
    ("alerts", "Candidate watchlist alerts stored"),
    ("passages", "Counting-line passages stored"),
    ("violations", "Traffic violations stored"),
    ("segments_kept", "Recording segments kept"),
)


class _StatusCollector(Collector):
    def __init__(self, status: ServiceStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        cams = self.status.cameras
        for name, doc in _COUNTERS:
            family = CounterMetricFamily(f"kuzet_{name}", doc, labels=["camera"])
            for c in cams:
                family.add_metric([c.camera], float(getattr(c, name)))
            yield family
        cpu = CounterMetricFamily(
            "kuzet_cpu_seconds", "CPU time of the camera's worker process (decoding and analysis)", labels=["camera"]
        )
        for c in cams:
            cpu.add_metric([c.camera], c.cpu_s)
        yield cpu
        depth = GaugeMetricFamily("kuzet_queue_depth", "Decoded frames waiting for analysis", labels=["camera"])
        up = GaugeMetricFamily("kuzet_camera_up", "1 when frames arrive from the camera", labels=["camera"])
        state = GaugeMetricFamily("kuzet_camera_state", "1 for the camera's current state", labels=["camera", "state"])
        node = GaugeMetricFamily(
            "kuzet_camera_node", "1 for the node the camera's worker runs on", labels=["camera", "node"]
        )
        decoder = GaugeMetricFamily(
            "kuzet_camera_decoder", "1 for how the camera's stream is decoded", labels=["camera", "decoder"]
        )
        latency = HistogramMetricFamily(
            "kuzet_inference_seconds", "Analysis time per analysed frame (detection to decision)", labels=["camera"]
        )
        for c in cams:
            depth.add_metric([c.camera], float(c.queue_depth))
            up.add_metric([c.camera], 1.0 if c.state == "up" else 0.0)
            for s in STATES:
                state.add_metric([c.camera, s], 1.0 if c.state == s else 0.0)
            if c.node:
                node.add_metric([c.camera, c.node], 1.0)
            if c.decoder:
                decoder.add_metric([c.camera, c.decoder], 1.0)
            cumulative, buckets = 0, []
            for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], c.latency_buckets, strict=True):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            latency.add_metric([c.camera], buckets, c.latency_sum)
        yield from (depth, up, state, node, decoder, latency)
        yield CounterMetricFamily(
            "kuzet_mqtt_published", "Messages the MQTT broker acknowledged", value=float(self.status.mqtt_published)
        )
        shared = CounterMetricFamily(
            "kuzet_detector", "The shared detector's frames and model calls (run.shared_detector)", labels=["count"]
        )
        shared.add_metric(["frames"], float(self.status.detector_frames))
        shared.add_metric(["calls"], float(self.status.detector_calls))
        yield shared
        hooks = CounterMetricFamily("kuzet_webhook_deliveries", "Webhook deliveries by result", labels=["result"])
        hooks.add_metric(["delivered"], float(self.status.webhooks_delivered))
        hooks.add_metric(["failed"], float(self.status.webhooks_failed))
        yield hooks
        yield GaugeMetricFamily(
            "kuzet_status_updated_seconds",
            "When kuzet run last wrote its status (Unix time)",
            value=self.status.updated,
        )


def render(status: ServiceStatus) -> bytes:
    """The Prometheus text exposition of a status."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status))
    return generate_latest(registry)
