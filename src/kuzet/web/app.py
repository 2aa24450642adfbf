"""The whole web application `kuzet serve` runs: the REST API with the dashboard's pages and static files on top."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kuzet.api.app import create_app as create_api
from kuzet.services.container import Services
from kuzet.web.chrome import error_page
from kuzet.web.views import router

STATIC = Path(__file__).resolve().parent / "static"


def create_app(services: Services, *, secure_cookies: bool | None = None) -> FastAPI:
    """The API (`kuzet.api.app.create_app`) and the dashboard over one `Services`."""
    app = create_api(services, secure_cookies=secure_cookies)
    app.state.error_page = error_page  # errors on the dashboard's pages are pages, with the menu
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
