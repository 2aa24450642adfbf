"""No request reaches an OpenTelemetry collector through FastAPI's own instrumentation.

An insider who runs the server under `opentelemetry-instrument`, or sets `FASTAPI_OTEL_AUTO_CONFIGURE`, would
otherwise get every request's URL (who looked up whom: `/api/events?identity=NAME`) and the client's address in
their collector, outside the ledger. The attack runs in a fresh interpreter, because OpenTelemetry's providers are
set once per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ATTACK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from kuzet.services.container import build_services
    from kuzet.web.app import create_app

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracing)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    def seen(app, path):
        spans.clear()
        with TestClient(app) as client:
            status = client.get(path).status_code
        data = reader.get_metrics_data()
        points = sum(
            len(m.data.data_points)
            for r in (data.resource_metrics if data else [])
            for s in r.scope_metrics
            if s.scope.name == "fastapi"
            for m in s.metrics
        )
        attributes = [dict(s.attributes or {}) for s in spans.get_finished_spans()]
        return {"status": status, "spans": attributes, "points": points}

    plain = FastAPI()
    plain.get("/api/events")(lambda identity="": {})
    control = seen(plain, "/api/events?identity=Jane+Doe")
    services = build_services(Path(sys.argv[1]))
    try:
        kuzet = seen(create_app(services), "/api/events?identity=Jane+Doe")
    finally:
        services.close()
    print(json.dumps({"control": control, "kuzet": kuzet}, default=str))
    """
)


def test_no_request_reaches_an_opentelemetry_provider_the_process_was_given(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", ATTACK, str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    control, kuzet = found["control"], found["kuzet"]
    # the provider works: a plain FastAPI app hands it the lookup, name and all
    assert control["status"] == 200 and control["spans"] and control["points"]
    assert any("Jane" in str(span) for span in control["spans"]), control
    # kuzet's app (the route refuses the unsigned request; the span would have been made anyway) hands it nothing
    assert kuzet["status"] == 401
    assert kuzet["spans"] == [] and kuzet["points"] == control["points"], kuzet
