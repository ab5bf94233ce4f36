"""The operator console's frame: its templates, who is logged in, what their role allows, CSRF on
every form, and the login and logout routes."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.console import accounts, audit
from newsletter.console.accounts import Role
from newsletter.console.progress import live_counts
from newsletter.console.sessions import COOKIE, LOGIN_COOKIE, Login, Sessions
from newsletter.console.snapshots import Snapshots
from newsletter.context import AppContext
from newsletter.database.engine import open_sync_engine
from newsletter.database.ratelimit import count_request
from newsletter.editions.service import LiveCounts
from newsletter.resources import template_dirs
from newsletter.web.deps import ContextDep
from newsletter.web.security import CONTENT_SECURITY_POLICY, SECURITY_HEADERS

PREFIX = "/admin"
# The pages' policy, and the console's live progress (server-sent events) from its own origin.
CONSOLE_POLICY = CONTENT_SECURITY_POLICY + "; connect-src 'self'"
CONSOLE_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": CONSOLE_POLICY}


class LoginRequired(Exception):
    """No live session: the browser goes to the login page, and back here afterwards."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class Refused(Exception):
    """Logged in, but the role does not allow this (403), or a form without its CSRF token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Console:
    """Templates and sessions of the console: built once per app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions = Sessions(settings)
        self.snapshots = Snapshots()
        # SQLite: costly counts on a connection of their own, off the pages' one (made on first use).
        self._counting: Engine | None = None
        self.env = Environment(
            loader=FileSystemLoader([str(d) for d in template_dirs("admin", settings.site.templates_dir)]),
            autoescape=select_autoescape(disabled_extensions=("js",), default=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )
        self.env.globals.update(site=settings.site, Role=Role)
        # Read once (an operator's folder first, like the templates): no file read per request.
        self.script = self.env.loader.get_source(self.env, "console.js")[0]  # type: ignore[union-attr]
        self.secure_cookies = not _is_local(settings.site.base_url)

    def render(
        self,
        template: str,
        login: Login | None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **data: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(login=login, **data)
        return HTMLResponse(html, status_code, headers={**CONSOLE_HEADERS, **(headers or {})})

    def apart(self, context: AppContext) -> Engine | None:
        """Where costly reads go (SQLite: a connection of their own; PostgreSQL: the pool)."""
        if self._counting is None and context.db.is_sqlite:
            self._counting = open_sync_engine(self.settings.database, pool_size=1)
        return self._counting

    def live_counts(self, context: AppContext) -> LiveCounts:
        return live_counts(context, self.snapshots, self.apart(context))

    async def close(self) -> None:
        await self.snapshots.close()
        if self._counting is not None:
            self._counting.dispose()

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=PREFIX,
            httponly=True,
            secure=self.secure_cookies,
            samesite="strict",
        )


def _is_local(base_url: str) -> bool:
    host = base_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console  # built with the app when the console is on
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]


async def current_login(request: Request, console: ConsoleDep, context: ContextDep) -> Login:
    login = await console.sessions.resolve(context, request.cookies.get(COOKIE))
    if login is None:
        raise LoginRequired(request.url.path)
    return login


def role(needed: Role) -> Any:
    """A dependency: the login, if its role allows `needed` (else 403)."""

    async def allowed(login: Annotated[Login, Depends(current_login)]) -> Login:
        if not login.account.role.may(needed):
            raise Refused(f"Your role ({login.account.role}) cannot do this: it needs {needed} or owner.")
        return login

    return Depends(allowed)


Viewer = Annotated[Login, role(Role.VIEWER)]
Editor = Annotated[Login, role(Role.EDITOR)]
Owner = Annotated[Login, role(Role.OWNER)]


async def checked(request: Request, login: Login, console: Console) -> dict[str, str]:
    """The posted form, if it carries this session's CSRF token (else refused, nothing done)."""
    form = await request.form()
    given = form.get("csrf")
    if not isinstance(given, str) or not console.sessions.csrf_matches(login.session_id, given):
        raise Refused(
            "This form has expired or did not come from this console. Reload the page and try again."
        )
    return {k: v for k, v in form.items() if isinstance(v, str)}


def address(request: Request) -> str:
    return request.client.host if request.client else ""


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, console: ConsoleDep, next: str = "") -> HTMLResponse:
    return _login_form(request, console, next_path=next)


def _login_form(
    request: Request,
    console: Console,
    *,
    next_path: str,
    error: str = "",
    status_code: int = 200,
    name: str = "",
) -> HTMLResponse:
    """The form and its own CSRF cookie (double submit: a page elsewhere can post neither)."""
    token = secrets.token_urlsafe(24)
    response = console.render(
        "login.html",
        None,
        status_code,
        csrf=console.sessions.csrf_for(token),
        next=_safe_next(next_path),
        error=error,
        name=name,
    )
    console.set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def log_in(
    request: Request,
    console: ConsoleDep,
    context: ContextDep,
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2048)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    sessions = console.sessions
    form_cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not form_cookie or not sessions.csrf_matches(form_cookie, csrf):
        return _login_form(
            request,
            console,
            next_path=next,
            error="The form expired: please log in again.",
            status_code=400,
            name=name,
        )
    name = name.strip().lower()
    client = address(request)
    wait = await _locked_out(console, context, name, client)
    if wait is not None:
        await audit.record(context, name, "login.locked", address=client)
        minutes = max(1, round(wait / 60))
        message = f"Too many failed logins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        response = _login_form(request, console, next_path=next, error=message, status_code=429, name=name)
        response.headers["Retry-After"] = str(wait)
        return response
    account = await accounts.authenticate(context, name, password)
    if account is None:
        await _count_failure(console, context, name, client)
        await audit.record(context, name, "login.failed", address=client)
        return _login_form(
            request,
            console,
            next_path=next,
            error="That name and password do not match.",
            status_code=401,
            name=name,
        )
    cookie = await sessions.start(context, account, replacing=request.cookies.get(COOKIE))
    await audit.record(context, account.name, "login", address=client)
    redirect = RedirectResponse(_safe_next(next) or PREFIX, status_code=303)
    console.set_cookie(redirect, COOKIE, cookie, max_age=sessions.lifetime_seconds)
    redirect.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return redirect


async def _locked_out(console: Console, context: Any, name: str, client: str) -> int | None:
    sessions = console.sessions
    async with context.db.engine.connect() as conn:
        waits = [
            await sessions.by_account.waiting(conn, name),
            await sessions.by_address.waiting(conn, client),
        ]
    known = [w for w in waits if w is not None]
    return max(known) if known else None


async def _count_failure(console: Console, context: Any, name: str, client: str) -> None:
    sessions = console.sessions
    async with context.db.session() as session:
        await count_request(sessions.by_account, context.db, session, name)
        await count_request(sessions.by_address, context.db, session, client)
        await session.commit()


@router.post("/logout")
async def log_out(
    request: Request,
    console: ConsoleDep,
    context: ContextDep,
    login: Annotated[Login, Depends(current_login)],
) -> Response:
    await checked(request, login, console)
    await console.sessions.end(context, login)
    await audit.record(context, login.account.name, "logout", address=address(request))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def _safe_next(path: str) -> str:
    """Only a console path: never another site (`//evil`, `/\\evil`) or a scheme."""
    if path.startswith(PREFIX) and not path.startswith("//") and "\\" not in path and "\n" not in path:
        return path
    return ""


async def to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"{PREFIX}/login?next={quote(_safe_next(exc.path))}", status_code=303)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    console = get_console(request)
    login = await console.sessions.resolve(request.app.state.context, request.cookies.get(COOKIE))
    return console.render("refused.html", login, 403, message=exc.message, nav="")


@router.get("/console.js")
async def script(console: ConsoleDep) -> Response:
    """The console's one script (live progress): served here, so the CSP keeps script-src 'self'."""
    return Response(
        console.script,
        media_type="text/javascript",
        headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"},
    )
