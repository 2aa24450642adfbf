"""A live service with one user per role, and an API client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kuzet.api.app import create_app
from kuzet.app import Kuzet
from kuzet.core.types import ROLES
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.recognize import FaceEmbedder
from tests.conftest import PASSWORD, share_models


@pytest.fixture
def api(
    tmp_path: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder
) -> Iterator[tuple[Kuzet, TestClient, dict[str, str]]]:
    svc = share_models(Kuzet(tmp_path / "data"), centerface, embedder)
    admin = svc.init_admin("admin", PASSWORD)
    for role in ROLES:
        if role != "admin":
            svc.add_user(admin, role, PASSWORD, [role])
    tokens = {role: svc.login(role, PASSWORD)[1] for role in ROLES}
    with TestClient(create_app(svc.services)) as client:
        yield svc, client, tokens
    svc.close()
