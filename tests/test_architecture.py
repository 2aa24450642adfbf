"""The rules the code's structure follows (docs/architecture.md), checked on the source so that they stay true.

Each rule is checked by reading the modules' syntax trees: what they import, what they call, how long they are.
The last tests check at run time what a static look cannot: plain reads write nothing, and a live camera worker
builds only what it needs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store

SRC = Path(__file__).resolve().parents[1] / "src" / "kuzet"

LAYERS = {
    "core": 0,
    "config": 1,
    "ingest": 2,
    "detect": 2,
    "recognize": 2,
    "track": 2,
    "analytics": 3,
    "pipeline": 3,
    "governance": 4,
    "store": 5,
    "audit": 5,
    "services": 6,
    "runtime": 7,
    "api": 7,
    "eval": 7,
    "web": 8,
    "cli": 9,
    "demo": 9,
    "bench": 9,
    "app": 10,
}
"""Top-level package -> layer: a module may import its own layer and the layers below, never one above.

`eval` measures the models and the redaction policy, so it sits above governance; `app` is the deprecated facade
that nothing imports.
"""

SHORT = ("services", "api", "cli", "config", "web")
"""Packages whose modules stay under MAX_MODULE lines and whose functions stay under MAX_FUNCTION lines."""
MAX_MODULE = 600
MAX_FUNCTION = 60


@dataclass(frozen=True)
class Module:
    """One source file, parsed."""

    path: Path
    package: str
    tree: ast.Module

    @property
    def name(self) -> str:
        return self.path.relative_to(SRC).as_posix()

    def imports(self) -> list[tuple[int, str]]:
        """(line, module) of every kuzet or sqlalchemy import, wherever it is (functions, TYPE_CHECKING blocks)."""
        found = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names]
        return [(line, m) for line, m in found if m.startswith(("kuzet.", "sqlalchemy"))]


def _modules() -> list[Module]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        package = rel.parts[0].removesuffix(".py")
        if package == "__init__":
            continue
        out.append(Module(path, package, ast.parse(path.read_text(encoding="utf-8"))))
    return out


MODULES = _modules()


def test_every_package_has_a_layer() -> None:
    assert {m.package for m in MODULES} <= set(LAYERS), "add the new package to LAYERS and docs/architecture.md"


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = []
    for m in MODULES:
        for line, target in m.imports():
            if target.startswith("kuzet."):
                package = target.split(".")[1]
                if LAYERS.get(package, -1) > LAYERS[m.package]:
                    wrong.append(f"{m.name}:{line} ({m.package}) imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_api_never_imports_the_dashboard_and_nothing_imports_the_old_facade() -> None:
    wrong = [
        f"{m.name}:{line} imports {target}"
        for m in MODULES
        for line, target in m.imports()
        if (m.package == "api" and target.startswith("kuzet.web")) or target.startswith("kuzet.app.")
    ]
    assert not wrong, "\n".join(wrong)


def test_sql_lives_only_in_the_store_and_the_ledger() -> None:
    """No other module builds queries or rows; services see sessions only as a type to hand to repositories."""
    wrong = []
    for m in MODULES:
        if m.package in ("store", "audit"):
            continue
        for line, target in m.imports():
            if target == "sqlalchemy.orm.Session" and m.name == "services/uow.py":
                continue  # the unit of work holds the session it gives its repositories
            if target.startswith(("sqlalchemy", "kuzet.store.models")):
                wrong.append(f"{m.name}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_request_statuses_are_defined_once() -> None:
    """Watchlist entries and enrolments share one set of statuses (`governance.approval`); nothing defines its own."""
    defining = sorted(
        {
            m.name
            for m in MODULES
            for node in m.tree.body
            if isinstance(node, ast.Assign)
            for c in (node.value.elts if isinstance(node.value, ast.Tuple) else [node.value])
            if isinstance(c, ast.Constant) and c.value in ("approved", "withdrawn")  # `X = "approved"`, `A, B = ...`
        }
    )
    assert defining == ["governance/approval.py"]


def _calls(m: Module) -> list[tuple[int, str]]:
    """(line, dotted name) of every call in a module, e.g. (12, "actor.has") or (30, "datetime.now")."""
    out = []
    for node in ast.walk(m.tree):
        if isinstance(node, ast.Call):
            parts = []
            f = node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                parts.append(f.id)
            out.append((node.lineno, ".".join(reversed(parts))))
    return out


def test_every_permission_check_goes_through_the_table() -> None:
    """Roles are checked in one place (`services.permissions`); nothing else asks a user for a role by name."""
    allowed = {"services/permissions.py", "governance/users.py"}
    wrong = [
        f"{m.name}:{line} calls {name}"
        for m in MODULES
        if m.name not in allowed
        for line, name in _calls(m)
        if name.endswith(".has") or name == "require" or name.endswith("users.require")
    ]
    assert not wrong, "\n".join(wrong)


def test_every_refusal_is_built_by_the_unit_of_work() -> None:
    """Refusals and denials are raised only where they are ledgered first (`AuditedUnitOfWork.refuse/deny/require`)."""
    allowed = {"services/uow.py", "governance/users.py", "core/errors.py"}
    wrong = [
        f"{m.name}:{line} builds {name}"
        for m in MODULES
        if m.name not in allowed
        for line, name in _calls(m)
        if name.split(".")[-1] in ("PolicyRefusal", "PermissionDenied")
    ]
    assert not wrong, "\n".join(wrong)


def test_governance_users_require_is_called_only_by_the_permission_table() -> None:
    callers = [
        m.name
        for m in MODULES
        for _, target in m.imports()
        if target == "kuzet.governance.users.require" and m.name != "services/permissions.py"
    ]
    assert not callers


def test_one_clock_repositories_and_services_never_read_the_time_themselves() -> None:
    """Repositories and services take the time from the injected clock (`ServiceContext.clock`)."""
    clocks = ("datetime.now", "datetime.utcnow", "date.today", "time.time")
    wrong = []
    for m in MODULES:
        if not (m.name.startswith("store/repositories/") or m.package == "services"):
            continue
        for line, name in _calls(m):
            if name in clocks and m.name != "services/context.py":  # the clock itself
                wrong.append(f"{m.name}:{line} calls {name}()")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", SHORT)
def test_modules_and_functions_stay_short(package: str) -> None:
    long = []
    for m in MODULES:
        if m.package != package:
            continue
        lines = len(m.path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE:
            long.append(f"{m.name}: {lines} lines")
        for node in ast.walk(m.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION:
                    long.append(f"{m.name}:{node.lineno} {node.name}: {n} lines")
    assert not long, "\n".join(long)


def test_the_rule_checks_catch_what_they_are_for() -> None:
    """The checks above are not vacuous: a module breaking each rule is caught."""
    bad = Module(
        SRC / "store" / "bad.py",
        "store",
        ast.parse(
            "from kuzet.services.views import event\n"
            "from datetime import datetime\n"
            "def f(actor):\n    actor.has('admin')\n    raise PolicyRefusal('no')\n    return datetime.now()\n"
        ),
    )
    assert [t for _, t in bad.imports() if LAYERS[t.split(".")[1]] > LAYERS["store"]] == ["kuzet.services.views.event"]
    names = [n for _, n in _calls(bad)]
    assert "actor.has" in names and "PolicyRefusal" in names and "datetime.now" in names


# -- at run time ------------------------------------------------------------------------------------------------


def test_plain_reads_open_no_write_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads that are nobody's data (sign-in checks, the gallery, checkpoints, holds, status) never take the lock."""
    from kuzet.services.container import build_services
    from kuzet.store.db import Database

    services = build_services(tmp_path / "data")
    admin = services.users.init_admin("admin", "a long enough password")
    auditor = services.users.add(admin, "audrey", "a long enough password", ["auditor"])
    _, token = services.users.login("audrey", "a long enough password")
    services.audit.checkpoint(auditor)
    writes = []
    real = Database.session

    def counting(self: Database) -> AbstractContextManager[Session]:
        writes.append(1)
        return real(self)

    monkeypatch.setattr(Database, "session", counting)
    try:
        assert services.users.authenticate(token).name == "audrey"
        services.users.list(auditor)
        services.audit.checkpoints(auditor)
        services.audit.key_rotations(auditor)
        services.audit.consistency_sizes(auditor, 1, 2)
        services.retention.holds(auditor)
        services.gallery.load()
        services.watchlists.entry_active(1)
        services.watchlists.active_plates()
        services.dashboard.overview(auditor)
        services.dashboard.alert_feed(auditor, 0)
        services.cameras.overview(auditor)
    finally:
        monkeypatch.undo()
    services.close()
    assert writes == []


def test_a_live_worker_builds_only_what_it_writes_through(tmp_path: Path) -> None:
    """A worker's process opens the data directory without migrating it, writes no ledger entry, and loads neither
    the old facade, the API nor the dashboard."""
    from kuzet.services.container import build_services

    data = tmp_path / "data"
    build_services(data).close()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kuzet.config.models import KuzetConfig\n"
        "from kuzet.runtime import worker\n"
        "from kuzet.services.container import build_analysis\n"
        f"analysis = build_analysis(Path({str(data)!r}), KuzetConfig(), origin='run@test/cam')\n"
        "with analysis.uow.read() as r:\n"
        "    print(r.ledger.size())\n"
        "analysis.ctx.close()\n"
        "print(sorted(m for m in sys.modules if m in ('kuzet.app', 'kuzet.api', 'kuzet.web', 'kuzet.cli')))\n"
    )
    size_before = _ledger_size(data)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert int(out[0]) == size_before == _ledger_size(data)
    assert out[1] == "[]"


def _ledger_size(data: Path) -> int:
    with raw_db(data) as con:
        return int(con.execute("SELECT count(*) FROM audit_entries").fetchone()[0])
