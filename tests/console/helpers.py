"""Logging in to the console from a test, and reading its forms and audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from sqlalchemy import select

from newsletter.console.sessions import COOKIE
from newsletter.context import AppContext
from newsletter.database.models import AuditEvent

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')

Client = Callable[..., httpx.AsyncClient]


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token of the first form on the page."""
    found = _CSRF.search(page.text)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def log_in(
    client: httpx.AsyncClient, name: str, password: str = PASSWORD, next: str = ""
) -> httpx.Response:
    form = await client.get("/admin/login")
    assert form.status_code == 200
    data = {"name": name, "password": password, "csrf": csrf_of(form), "next": next}
    return await client.post("/admin/login", data=data)


async def audit_actions(context: AppContext) -> list[tuple[str, str, str]]:
    """(actor, action, target) of every audit entry, oldest first."""
    query = select(AuditEvent.actor, AuditEvent.action, AuditEvent.target).order_by(AuditEvent.id)
    async with context.db.session() as session:
        return [(r.actor, r.action, r.target) for r in (await session.execute(query)).all()]


def session_cookie(answer: httpx.Response) -> str:
    """The session cookie's value a response sets ("" if none)."""
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(f"{COOKIE}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return ""
