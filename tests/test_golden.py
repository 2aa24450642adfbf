"""Golden tests: what users and integrations see must not change when the code behind it is reorganised.

Each test renders one public surface (the OpenAPI document, the command tree with its help, the JSON of
`kuzet analyze --json`, `kuzet events --json` and the traffic output, the MQTT and webhook payloads, the ordered
ledger actions of the demo scenario) and compares it with the file committed under `tests/golden/`. Run with
`KUZET_UPDATE_GOLDEN=1` to write them again after an intended change (and review the diff).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kuzet.cli.main import app
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("KUZET_UPDATE_GOLDEN") == "1"
EXAMPLES = "face_recognition_examples"
PASSWORD = "a long enough password"
runner = CliRunner()


def check(name: str, value: Any) -> None:
    """Compare `value` (as pretty JSON) with the golden file `name`; write it instead when updating."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"{path} did not exist and was written: review and commit it")
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(text), f"{name} changed"


def test_openapi_document_is_unchanged(tmp_path: Path) -> None:
    from kuzet.api.app import create_app
    from kuzet.app import Kuzet

    svc = Kuzet(tmp_path / "data")
    check("openapi.json", create_app(svc.services).openapi())
    svc.close()


def _tree(command: Any, path: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "help": (command.help or "").strip(),
        "params": [
            {
                "name": p.name,
                "opts": sorted(p.opts),
                "required": p.required,
                "help": getattr(p, "help", None),
                "multiple": p.multiple,
            }
            for p in command.params
        ],
    }
    commands = getattr(command, "commands", None)  # Typer's groups are not click.Group subclasses
    if commands is not None:
        node["commands"] = {n: _tree(c, f"{path} {n}") for n, c in sorted(commands.items())}
    return node


def test_command_tree_and_help_are_unchanged() -> None:
    tree = _tree(typer.main.get_command(app), "kuzet")
    assert len(tree["commands"]) > 20  # the whole tree, not just the root
    check("cli.json", tree)


def _normalise(value: Any) -> Any:
    """Times, paths and ids that differ between runs replaced by placeholders; scores to 2 decimals."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("created_at", "at") and isinstance(v, str):
                out[k] = "<time>"
            elif k in ("snapshot", "evidence", "source") and isinstance(v, str):
                out[k] = "<path>" if v else ""
            elif k == "evidence_sha256":
                out[k] = "<sha256>"
            elif isinstance(v, float):
                out[k] = round(v, 2)
            else:
                out[k] = _normalise(v)
        return out
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _shape(value: Any) -> Any:
    """Keys and value types only (for outputs whose numbers depend on the machine's floating point)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _kuzet(data: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data), *args], input=stdin)
    return result.exit_code, result.output


@pytest.mark.slow
def test_analysis_events_and_traffic_json_are_unchanged(tmp_path: Path, faces_dir: Path, video_dir: Path) -> None:
    data = tmp_path / "d"
    for args in (
        ("init", "--admin", "root", "--password-stdin"),
        ("login", "root", "--password-stdin"),
        ("users", "add", "aigul", "--role", "approver", "--password-stdin"),
    ):
        assert _kuzet(data, *args, stdin=PASSWORD + "\n")[0] == 0
    code, out = _kuzet(
        data,
        "enroll",
        "Lin-Manuel Miranda",
        str(faces_dir / EXAMPLES / "lin-manuel-miranda.png"),
        "--consent",
        "form 1",
    )
    assert code == 0, out
    person = out.strip().splitlines()[-1]
    assert _kuzet(data, "login", "aigul", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    assert _kuzet(data, "people", "approve", person)[0] == 0
    assert _kuzet(data, "login", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    events_json = tmp_path / "events.json"
    code, out = _kuzet(
        data,
        "analyze",
        str(video_dir / "short_hamilton_clip.mp4"),
        "--camera",
        "stage",
        "--fps",
        "5",
        "--json",
        str(events_json),
    )
    assert code == 0, out
    analysed = json.loads(events_json.read_text())
    check("analyze_events.json", {"identities": sorted({e["identity"] for e in analysed}), "shape": _shape(analysed)})
    code, out = _kuzet(data, "events", "--json")
    assert code == 0
    check("events.json", _shape(json.loads(out)))
    example = Path(__file__).resolve().parents[1] / "examples" / "car-park.yaml"
    traffic_json = tmp_path / "traffic.json"
    code, out = _kuzet(
        data,
        "--config",
        str(example),
        "analyze",
        str(video_dir / "car-detection.mp4"),
        "--camera",
        "car-park",
        "--traffic-json",
        str(traffic_json),
    )
    assert code == 0, out
    traffic = json.loads(traffic_json.read_text())
    check(
        "traffic.json",
        {"per_line": traffic["per_line"], "passages": len(traffic["passages"]), "shape": _shape(traffic)},
    )


def test_mqtt_and_webhook_payloads_are_unchanged() -> None:
    from kuzet.analytics.traffic import Passage
    from kuzet.core.types import Event
    from kuzet.runtime.integrations import Notice, _visible
    from kuzet.services import views
    from kuzet.services.session import Committed, StoredAlert
    from kuzet.store.repositories.traffic import StoredViolation

    event = Event(7, "gate", "Ann Example", 3, 0.95, 1.0, 2.5, 4, "snap.jpg", 2, "rtsp://h/s", "t")
    stored = Committed(
        run_id=2,
        events=[event],
        alerts=[StoredAlert(9, 0.93, 3.0, 4.0, 2)],
        passages=[Passage("l1", "in", "car", 5, 6.5, 42.0, 3.5, "123ABC02")],
        violations=[StoredViolation(11, "speeding", "l1", 6.5, "123ABC02", {"speed_kmh": 42.0, "note": "x"}, "e", "h")],
        spans=[],
    )
    # what a live camera's commit writes to the outbox, and the integrations send from there
    sent = [Notice(kind, "gate", data) for kind, data in views.notices(stored)]
    payloads = {
        n.kind: {
            "topic_data": _visible(n, include_identity=True, include_plates=True),
            "without_personal_fields": _visible(n, include_identity=False, include_plates=False),
        }
        for n in sent
    }
    check("integration_payloads.json", _normalise(payloads))


@pytest.mark.slow
def test_demo_ledger_actions_are_unchanged(tmp_path: Path) -> None:
    from rich.console import Console

    from kuzet.config.models import KuzetConfig
    from kuzet.demo import run_demo

    with open(os.devnull, "w") as sink:
        quiet = Console(file=sink)
        run_demo(tmp_path / "demo", config=KuzetConfig(), console=quiet, progress_console=quiet)
    with raw_db(tmp_path / "demo") as db:
        actions = [a for (a,) in db.execute("SELECT action FROM audit_entries ORDER BY seq")]
    check("demo_ledger_actions.json", actions)
    assert re.search("enrol", " ".join(actions))
