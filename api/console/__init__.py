"""The web console: static files served by the API process (design.md §4, README "Web console").

The console is a client of the same JSON API as every other client, so this package imports
nothing below `api/`: it only serves `static/` (vanilla ES modules, CSS, SVG drawn in the
browser; no build step, nothing from a CDN) under a strict Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"

# Only the console's own files run or style the page: no inline script or handler, no eval, no
# third-party origin; the API is reached on the same origin. `frame-ancestors` stops clickjacking.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The sign-in link's code sits in the fragment, which is never sent; no Referer leaks the page.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Files change with each release and weigh little: revalidate instead of serving a stale mix.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


async def index() -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)


def mount(app: FastAPI) -> None:
    """`GET /` serves the console's page; its scripts, styles and icons live under /console/."""
    app.add_api_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount(PREFIX, ConsoleFiles(directory=STATIC_DIR), name="console")
