"""The API's documentation: its OpenAPI schema, Swagger UI and ReDoc, every asset served by us.

The pages load nothing from elsewhere (no CDN, no web fonts), so they work offline and behind
a firewall; their Content-Security-Policy holds them to it. Swagger UI and ReDoc come from the
fastapi-offline wheel, pinned in pyproject.toml (it ships Swagger UI 5.32.6 and ReDoc 2.5.3).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable, Coroutine
from html import escape
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Response, status
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse

OPENAPI_URL = "/api/openapi.json"
SWAGGER_URL = "/api/docs"
REDOC_URL = "/api/redoc"
ASSETS_URL = "/api/docs/assets"
ASSET_PACKAGE = "fastapi_offline"
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Swagger UI sends the schema to validator.swagger.io for a badge unless told not to.
SWAGGER_PARAMETERS: dict[str, Any] = {"validatorUrl": None}
# Both inject their own styles; ReDoc runs its search in a worker made from a blob.
_POLICY = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"}


def add_api_docs(app: FastAPI, *, guard: list[Depends]) -> None:
    """The schema, both viewers and their assets, each behind `guard` (empty: public)."""
    title = escape(f"{app.title} API")
    favicon = f"{ASSETS_URL}/favicon.png"
    swagger = _page(
        get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=favicon,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
    )
    redoc = _page(
        get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=title,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )
    )

    async def schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    routes: dict[str, Callable[..., Coroutine[Any, Any, Response]]] = {
        OPENAPI_URL: schema,
        SWAGGER_URL: swagger,
        REDOC_URL: redoc,
        f"{ASSETS_URL}/{{name}}": _asset,
    }
    for path, endpoint in routes.items():
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False, dependencies=guard)


def _page(generated: HTMLResponse) -> Callable[[], Coroutine[Any, Any, Response]]:
    """FastAPI's page, with a policy allowing only our assets and its own inline script."""
    html = bytes(generated.body).decode()
    hashes = "".join(f" '{_sha256(script)}'" for script in _INLINE_SCRIPT.findall(html))
    headers = {**PAGE_HEADERS, "Content-Security-Policy": _POLICY.format(scripts=hashes)}

    async def endpoint() -> Response:
        return HTMLResponse(html, headers=headers)

    return endpoint


def _sha256(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


async def _asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Not Found")
    return Response(asset_bytes(name), media_type=media_type, headers=ASSET_HEADERS)


@functools.cache
def asset_bytes(name: str) -> bytes:
    """One of the wheel's files, read on first use and kept (about 2.8 MB for all four)."""
    return (resources.files(ASSET_PACKAGE) / "static" / name).read_bytes()
