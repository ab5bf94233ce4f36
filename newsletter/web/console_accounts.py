"""The console's owner pages: accounts (add, remove, set a password) and the settings in force."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from newsletter.config import mask_secrets, warnings
from newsletter.console import accounts, audit
from newsletter.console.sessions import Login
from newsletter.errors import InvalidInput, NotFound
from newsletter.web.console import PREFIX, Console, ConsoleDep, Owner, address, checked
from newsletter.web.deps import ContextDep

router = APIRouter(prefix=PREFIX, include_in_schema=False)
DONE = {
    "add": "Account added.",
    "remove": "Account removed.",
    "password": "Password set; its sessions ended.",
}


@router.get("/accounts", response_class=HTMLResponse)
async def accounts_page(
    login: Owner, console: ConsoleDep, context: ContextDep, done: str = ""
) -> HTMLResponse:
    return await _page(console, login, context, notice=DONE.get(done, ""))


async def _page(
    console: Console,
    login: Login,
    context: ContextDep,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    listed = await accounts.listing(context)
    return console.render(
        "accounts.html",
        login,
        status,
        accounts=listed,
        roles=list(accounts.Role),
        notice=notice,
        error=error,
        values=values or {"name": "", "role": "editor"},
        nav="accounts",
    )


@router.post("/accounts")
async def add_account(request: Request, login: Owner, console: ConsoleDep, context: ContextDep) -> Response:
    form = await checked(request, login, console)
    values = {"name": form.get("name", "").strip().lower(), "role": form.get("role", "")}
    try:
        if form.get("password", "") != form.get("password_again", ""):
            raise InvalidInput("password", "the two passwords differ")
        added = await accounts.add(
            context, values["name"], form.get("password", ""), accounts.role_of(values["role"])
        )
    except InvalidInput as exc:
        return await _page(console, login, context, error=str(exc), status=422, values=values)
    await audit.record(
        context,
        login.account.name,
        "account.add",
        target=added.name,
        detail=added.role,
        address=address(request),
    )
    return RedirectResponse(f"{PREFIX}/accounts?done=add", status_code=303)


@router.post("/accounts/{name}/remove")
async def remove_account(
    name: str, request: Request, login: Owner, console: ConsoleDep, context: ContextDep
) -> Response:
    form = await checked(request, login, console)
    if form.get("confirm") != name:
        error = f"name: type {name!r} to confirm its removal"
        return await _page(console, login, context, error=error, status=422)
    try:
        await accounts.remove(context, name)
    except NotFound as exc:
        return await _page(console, login, context, error=str(exc), status=404)
    except InvalidInput as exc:
        return await _page(console, login, context, error=str(exc), status=422)
    await audit.record(context, login.account.name, "account.remove", target=name, address=address(request))
    return RedirectResponse(f"{PREFIX}/accounts?done=remove", status_code=303)


@router.post("/accounts/{name}/password")
async def set_password(
    name: str, request: Request, login: Owner, console: ConsoleDep, context: ContextDep
) -> Response:
    form = await checked(request, login, console)
    try:
        if form.get("password", "") != form.get("password_again", ""):
            raise InvalidInput("password", "the two passwords differ")
        await accounts.set_password(context, name, form.get("password", ""))
    except NotFound as exc:
        return await _page(console, login, context, error=str(exc), status=404)
    except InvalidInput as exc:
        return await _page(console, login, context, error=str(exc), status=422)
    await audit.record(context, login.account.name, "account.password", target=name, address=address(request))
    if name == login.account.name:  # its own sessions ended, this one too
        return RedirectResponse(f"{PREFIX}/login", status_code=303)
    return RedirectResponse(f"{PREFIX}/accounts?done=password", status_code=303)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(login: Owner, console: ConsoleDep, context: ContextDep) -> HTMLResponse:
    """The configuration in force, secrets masked, and what production would warn about."""
    settings = context.settings
    shown = mask_secrets(settings)
    tables = {k: v for k, v in shown.items() if isinstance(v, dict)}
    lists = {k: v for k, v in shown.items() if isinstance(v, list)}
    return console.render(
        "settings.html",
        login,
        source=str(settings.source or "built-in defaults (no file)"),
        tables=tables,
        lists=lists,
        cautions=warnings(settings),
        nav="settings",
    )
