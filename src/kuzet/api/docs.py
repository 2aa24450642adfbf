"""The API's documentation page, served by kuzet itself: Swagger UI 5 from the `fastapi-swagger` package's assets.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; kuzet's content security policy
(`default-src 'self'`) blocks both, and a camera network's control room may have no internet. Here the assets come
from the installed package and the start-up script is a file of its own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from kuzet.core.errors import ConfigError

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kuzet API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><main id="swagger-ui"><p>Loading the API documentation...</p></main>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/start.js"></script></body></html>
"""
START = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n'


def assets() -> Path:
    """Where the installed Swagger UI files are.

    Raises:
        ConfigError: The `fastapi-swagger` package is not installed.
    """
    try:
        folder = Path(str(resources.files("fastapi_swagger") / "resources"))
    except ModuleNotFoundError:
        folder = Path("/nonexistent")
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise ConfigError(
            "Swagger UI (the fastapi-swagger package) is not installed",
            hint="reinstall kuzet with its dependencies: pip install -e .",
        )
    return folder


def install(app: FastAPI) -> None:
    """Serve /docs (Swagger UI over /openapi.json) from the installed package; `app` is built with docs_url=None."""
    app.mount("/docs/assets", StaticFiles(directory=assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/docs/start.js", include_in_schema=False)
    def start() -> Response:
        return Response(START, media_type="text/javascript")
