"""Error answers: the site's own page for browsers, JSON for programs, both with the pages'
security headers."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from http import HTTPStatus

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import TemplateError
from starlette.exceptions import HTTPException

from newsletter.logs import get_logger
from newsletter.web.limits import PROGRAM_PREFIXES
from newsletter.web.pages import Pages
from newsletter.web.security import SECURITY_HEADERS

log = get_logger(__name__)
# Seconds a client is asked to wait when the database is busy or unreachable.
DATABASE_RETRY_AFTER = 5
CONSOLE_PREFIX = "/admin/"
# Where the clients are programs: their errors stay JSON whatever they accept.
API_PATHS = frozenset({"/metrics", "/healthz"})

# What a reader is told; an exception's own detail is for programs (and may say too much).
PAGE_TEXTS: dict[int, tuple[str, str]] = {
    401: ("Not allowed", "This address needs a key that your request did not carry."),
    404: (
        "Page not found",
        "There is nothing at this address. If a link from one of our emails brought you here, "
        "open it again straight from the email.",
    ),
    405: ("Nothing to see here", "This address only takes the forms sent from our pages."),
    413: ("Too much to send", "The form was larger than we accept. Please shorten it and try again."),
    500: ("Something went wrong", "We could not answer your request. Please try again in a few minutes."),
}
FALLBACK_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
    "<body><main><h1>{title}</h1><p>{message}</p></main></body></html>"
)


def wants_json(request: Request) -> bool:
    """Programs: the API, metrics and health paths, and requests that ask for or send JSON."""
    path = request.url.path
    if path.startswith(PROGRAM_PREFIXES) or path in API_PATHS:
        return True
    accept = request.headers.get("accept", "").lower()
    sent = request.headers.get("content-type", "").lower()
    return ("json" in accept and "text/html" not in accept) or sent.startswith("application/json")


def answer(
    request: Request, status_code: int, detail: object, headers: Mapping[str, str] | None = None
) -> Response:
    """`{"detail": …}` for a program, the error page for a reader."""
    extra = dict(headers or {})
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code, headers={**SECURITY_HEADERS, **extra})
    title, message = PAGE_TEXTS.get(status_code, (_phrase(status_code), "We could not answer your request."))
    console = getattr(request.app.state, "console", None)
    if console is not None and request.url.path.startswith(CONSOLE_PREFIX):
        shown = f"{title}: {detail}" if status_code == 422 else message
        shown_page: Response = console.render(
            "error.html", None, status_code, headers=extra, title=title, message=shown
        )
        return shown_page
    pages: Pages = request.app.state.pages
    try:
        return pages.error(status_code, title, message, headers=extra)
    except TemplateError as exc:  # an operator's broken error.html must not hide the error
        log.error("web.error_page_failed", status=status_code, error=type(exc).__name__)
        page = FALLBACK_PAGE.format(title=escape(title), message=escape(message))
        return HTMLResponse(page, status_code, headers={**SECURITY_HEADERS, **extra})


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def route_template(request: Request) -> str:
    """The matched route's template (`/confirm/{token}`): the path itself may carry a token."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "-"))


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405, and every HTTPException a route or dependency raises."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return answer(request, exc.status_code, exc.detail, exc.headers)


async def not_found(request: Request, exc: Exception) -> Response:
    return answer(request, 404, f"not found: {exc}")


async def server_error(request: Request, exc: Exception) -> Response:
    """A bug: a plain page saying so, nothing of the exception (Starlette re-raises it after
    this answer, so the server logs the traceback)."""
    log.error(
        "web.unhandled_error", method=request.method, route=route_template(request), error=type(exc).__name__
    )
    return answer(request, 500, "internal server error")


async def database_busy(request: Request, exc: Exception) -> Response:
    """A locked, overloaded or unreachable database: 503 and Retry-After, never a 500."""
    log.warning("web.database_busy", route=route_template(request), error=type(exc).__name__)
    message = "the service is busy; please try again in a few seconds"
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
    if wants_json(request):
        return JSONResponse({"detail": message}, 503, headers={**SECURITY_HEADERS, **headers})
    pages: Pages = request.app.state.pages
    return pages.error(503, "Please try again", message.capitalize() + ".", headers=headers)
