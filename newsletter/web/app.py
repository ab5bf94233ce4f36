"""`create_app(settings)`: the FastAPI application, built from the configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from newsletter import __version__
from newsletter.config import Settings
from newsletter.context import AppContext, open_context
from newsletter.errors import DatabaseUnavailable, InvalidInput, NotFound, RenderError
from newsletter.logs import get_logger
from newsletter.web import (
    api_articles,
    api_bounces,
    api_editions,
    api_subscribers,
    archive,
    clicks,
    console,
    console_accounts,
    console_articles,
    console_pages,
    console_reports,
    console_subscribers,
    docs,
    errors,
    health,
    pages,
    webhooks,
)
from newsletter.web.auth import AdminDep
from newsletter.web.limits import BodySizeLimit
from newsletter.web.pages import Pages

log = get_logger(__name__)


# What any route may answer besides its own statuses, documented in the OpenAPI schema.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "The request body is over the size limit."},
    503: {"description": "The database is busy or unreachable: retry after `Retry-After` seconds."},
}
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "A valid admin bearer token (security.admin_token) is required."},
}


def create_app(settings: Settings, context: AppContext | None = None) -> FastAPI:
    """Build the app. Without a context, its lifespan opens (and migrates) the database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context is not None:
            app.state.context = context
            async with _imports_end_with(app):
                yield
            return
        async with open_context(settings) as opened:
            app.state.context = opened
            async with _imports_end_with(app):
                yield

    app = FastAPI(
        title=f"{settings.site.name} newsletter",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Starlette would build the redirect's Location from the Host header (a token in the
        # path would go wherever the request says): a path with a trailing slash is a 404.
        redirect_slashes=False,
    )
    # The schema, Swagger UI, ReDoc and their assets: behind the admin token unless public.
    docs.add_api_docs(app, guard=[] if settings.server.public_api_docs else [AdminDep])
    if context is not None:
        app.state.context = context
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.server.max_body_bytes,
        max_api_bytes=settings.server.max_api_body_bytes,
        uploads={console_subscribers.IMPORT_PATH: settings.console.max_import_bytes},
    )
    app.state.pages = Pages(settings)
    app.state.archive = archive.Archive(settings, app.state.pages)
    _add_error_handlers(app)
    app.include_router(health.router, responses=COMMON_RESPONSES)
    app.include_router(pages.router)
    app.include_router(archive.router)
    app.include_router(clicks.router)
    app.include_router(webhooks.router, responses={413: COMMON_RESPONSES[413]})
    if settings.console.enabled:
        app.state.console = console.Console(settings)
        for section in (
            console,
            console_pages,
            console_articles,
            console_subscribers,
            console_reports,
            console_accounts,
        ):
            app.include_router(section.router)
        app.add_exception_handler(console.LoginRequired, console.to_login)
        app.add_exception_handler(console.Refused, console.refused)
    for router in (api_articles.router, api_subscribers.router, api_editions.router, api_bounces.router):
        app.include_router(router, responses={**COMMON_RESPONSES, **ADMIN_RESPONSES})
    return app


@asynccontextmanager
async def _imports_end_with(app: FastAPI) -> AsyncIterator[None]:
    """Console imports and counts still running end with the app, before its database closes
    (an import's transaction rolls back: nothing half-imported)."""
    try:
        yield
    finally:
        imports = getattr(app.state, "imports", None)
        if imports is not None:
            await imports.close()
        console_state = getattr(app.state, "console", None)
        if console_state is not None:
            await console_state.close()


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(RenderError, _render_error)
    # Not every DBAPIError: an IntegrityError would be a bug, and a 500 says so.
    for database_error in (OperationalError, InterfaceError, PoolTimeout, DatabaseUnavailable):
        app.add_exception_handler(database_error, errors.database_busy)
    app.add_exception_handler(NotFound, errors.not_found)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(Exception, errors.server_error)


def field_of(location: Sequence[object]) -> str:
    """`("body", "items", 0, "email")` → `items[0].email`."""
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header", "form")]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name or "body"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    field = field_of(first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if request.url.path.startswith(errors.CONSOLE_PREFIX) and not errors.wants_json(request):
        return errors.answer(request, 422, f"{field}: {message}")
    return JSONResponse(
        {"detail": f"{field}: {message}", "field": field, "errors": _plain(problems)},
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


async def _render_error(request: Request, exc: Exception) -> JSONResponse:
    """An operator's template that cannot be rendered: said plainly, not a 500."""
    # The route's template, not the path: a path may carry a reader's token.
    log.error("web.render_failed", route=errors.route_template(request), error=str(exc))
    return JSONResponse({"detail": f"templates: {exc}", "field": "templates"}, status_code=422)
