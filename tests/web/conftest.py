"""Real Chromium (Debian's, driven by Playwright) and a real server for the browser tests."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from kuzet.config.models import KuzetConfig
from kuzet.core.types import ROLES
from kuzet.services.container import Services, build_services
from kuzet.web.app import create_app
from tests.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port for the block; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the web server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


def sign_in(browser: Browser, base: str, name: str) -> Page:
    """A new browser context signed in as `name` (every test user has the password PASSWORD)."""
    page = browser.new_context(viewport={"width": 1366, "height": 800}).new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header")).to_contain_text(name)
    return page


@contextmanager
def role_site(root: Path, config: KuzetConfig) -> Iterator[tuple[Services, TestClient]]:
    """Services over `root` with the administrator `admin` and one user per role named after it, and a test client."""
    svc = build_services(root, config)
    admin = svc.users.init_admin("admin", PASSWORD)
    for role in ROLES:
        if role != "admin":
            svc.users.add(admin, role, PASSWORD, [role])
    try:
        with TestClient(create_app(svc), follow_redirects=False) as client:
            yield svc, client
    finally:
        svc.close()
