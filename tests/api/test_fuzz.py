"""schemathesis generates requests from the OpenAPI document: no 500s, and nothing without signing in."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote

import schemathesis
from hypothesis import HealthCheck, settings

from kuzet.api.app import create_app
from kuzet.app import Kuzet
from kuzet.config.models import KuzetConfig, SignInConfig

_DIR = Path(tempfile.mkdtemp(prefix="kuzet-fuzz-"))
# Sign-in throttling that never locks, so fuzzed logins cannot lock the fuzzing user out.
_SVC = Kuzet(_DIR, KuzetConfig(sign_in=SignInConfig(max_failures=10**6)))
_ADMIN = _SVC.init_admin("admin", "fuzzing password 1")
for _role in ("auditor", "reviewer", "approver", "requester", "operator"):
    _SVC.add_user(_ADMIN, f"fuzz-{_role}", "fuzzing password 1", [_role])
# One user holding every role sees every operation's real behaviour, not just its 403.
_SVC.add_user(_ADMIN, "everyone", "fuzzing password 1", ["admin", "auditor", "reviewer", "approver", "operator"])
_TOKEN = _SVC.login("everyone", "fuzzing password 1")[1]
APP = create_app(_SVC.services)
PUBLIC = {"/api/health", "/api/auth/login"}

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# The event stream never ends by design (its ?once=1 form is covered in test_routes.py); logout would end the
# session the fuzzer uses.
schema = schema.exclude(path="/api/stream").exclude(path="/api/auth/logout")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_TOKEN}"})
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_nothing_without_signing_in(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": ""})
    if case.path in PUBLIC:
        assert response.status_code < 500
    else:
        # 400/422: a malformed request refused before anything runs; 405: a method the route lacks. Never 2xx.
        allowed = {400, 401, 405, 422}
        if any("\n" in unquote(str(v)) for v in (case.path_parameters or {}).values()):
            allowed.add(404)  # no route's pattern matches a newline (Starlette's `.*`): nothing ran at all
        assert response.status_code in allowed, f"{case.method} {case.path}: {response.status_code}"
