"""`create_app(settings)`: the FastAPI application, built from the configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from newsletter import __version__
from newsletter.config import Settings
from newsletter.context import AppContext, open_context
from newsletter.errors import InvalidInput, NotFound
from newsletter.web import api_articles, api_editions, api_subscribers, health, pages
from newsletter.web.limits import BodySizeLimit


def create_app(settings: Settings, context: AppContext | None = None) -> FastAPI:
    """Build the app. Without a context, its lifespan opens (and migrates) the database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context is not None:
            app.state.context = context
            yield
            return
        async with open_context(settings) as opened:
            app.state.context = opened
            yield

    app = FastAPI(
        title=f"{settings.site.name} newsletter",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    if context is not None:
        app.state.context = context
    app.add_middleware(BodySizeLimit, max_bytes=settings.server.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(NotFound, _not_found)
    app.include_router(health.router)
    for router in (pages.router, api_articles.router, api_subscribers.router, api_editions.router):
        app.include_router(router)
    return app


def field_of(location: Sequence[object]) -> str:
    """`("body", "items", 0, "email")` → `items[0].email`."""
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header", "form")]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = field_of(first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return JSONResponse(
        {"detail": f"{field}: {message}", "field": field, "errors": _plain(errors)},
        status_code=422,
    )


def _plain(errors: object) -> list[dict[str, object]]:
    plain: list[dict[str, object]] = []
    for error in errors if isinstance(errors, list | tuple) else []:
        plain.append({"field": field_of(error.get("loc", ())), "message": str(error.get("msg", ""))})
    return plain


async def _invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return JSONResponse({"detail": f"{exc.field}: {exc.message}", "field": exc.field}, status_code=422)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"not found: {exc}"}, status_code=404)
