"""The console's pages: the dashboard, editions (live progress, pause, resume, cancel, send now)
and the audit trail. Every action is recorded in the audit trail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse

from newsletter.console import audit, dashboard, previews
from newsletter.console.progress import progress_of, watch
from newsletter.console.sessions import Login
from newsletter.context import AppContext
from newsletter.database.models import utcnow
from newsletter.editions import service
from newsletter.editions.builder import open_edition
from newsletter.errors import InvalidInput, NotFound
from newsletter.web.console import (
    CONSOLE_POLICY,
    PREFIX,
    Console,
    ConsoleDep,
    Editor,
    Owner,
    Viewer,
    address,
    checked,
)
from newsletter.web.deps import ContextDep
from newsletter.web.security import SECURITY_HEADERS

EditionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
router = APIRouter(prefix=PREFIX, include_in_schema=False)
ACTIONS = ("pause", "resume", "cancel")
EDITIONS_PAGE = 50
DONE = {"pause": "Paused: workers finish what they hold.", "resume": "Resumed.", "cancel": "Cancelled."}
# The preview page frames the email's HTML, served from this console only.
PREVIEW_PAGE_CSP = CONSOLE_POLICY + "; frame-src 'self'"
# The email itself: no script, no form, no navigation of the console (sandboxed), remote images
# as a reader's mail app would load them.
EMAIL_FRAME_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
        "frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
}


@router.get("", response_class=HTMLResponse)
async def home(login: Viewer, console: ConsoleDep, context: ContextDep) -> HTMLResponse:
    board = await dashboard.dashboard(
        context, console.snapshots, console.live_counts(context), console.apart(context)
    )
    return console.render("dashboard.html", login, board=board, nav="dashboard")


@router.get("/editions", response_class=HTMLResponse)
async def editions(
    login: Viewer, console: ConsoleDep, context: ContextDep, before: Annotated[int | None, Query(ge=1)] = None
) -> HTMLResponse:
    live = console.live_counts(context)
    reports = await service.list_reports(context, limit=EDITIONS_PAGE, before=before, live=live)
    older = reports[-1].id if len(reports) == EDITIONS_PAGE else None
    newsletters = context.settings.newsletters
    return console.render(
        "editions.html", login, reports=reports, older=older, newsletters=newsletters, nav="editions"
    )


@router.post("/editions")
async def send_now(request: Request, login: Editor, console: ConsoleDep, context: ContextDep) -> Response:
    """Today's edition of a newsletter now (or continue today's): the workers build and send it."""
    form = await checked(request, login, console)
    newsletter = context.settings.find_newsletter(form.get("newsletter") or None)
    edition, created = await open_edition(context, newsletter, now=utcnow(), trigger="console", new=False)
    detail = "started" if created else "today's edition exists: opened it"
    await audit.record(
        context,
        login.account.name,
        "edition.send",
        target=f"edition {edition.id}",
        detail=f"{newsletter.id}: {detail}",
        address=address(request),
    )
    return RedirectResponse(f"{PREFIX}/editions/{edition.id}", status_code=303)


@router.get("/editions/{edition_id}", response_class=HTMLResponse)
async def edition(
    edition_id: EditionId,
    login: Viewer,
    console: ConsoleDep,
    context: ContextDep,
    done: str = "",
    refused: str = "",
) -> HTMLResponse:
    report = await service.report(context, edition_id, live=console.live_counts(context))
    failures = await service.deliveries(context, edition_id, status="failed", per_page=50)
    notice = DONE.get(done, "")
    problem = f"This edition is {report.status}: it cannot {refused}." if refused in ACTIONS else ""
    return console.render(
        "edition.html",
        login,
        report=report,
        progress=progress_of(report, 0.0),
        failures=failures,
        notice=notice,
        problem=problem,
        nav="editions",
    )


@router.get("/editions/{edition_id}/progress")
async def progress(
    edition_id: EditionId, login: Viewer, console: ConsoleDep, context: ContextDep
) -> EventSourceResponse:
    """Server-sent events: the edition's figures every second until it is done or cancelled."""
    live = console.live_counts(context)
    await service.report(context, edition_id, live=live)  # 404 before the stream starts

    async def events() -> AsyncIterator[dict[str, str]]:
        async for figure in watch(context, edition_id, live):
            yield {"event": "progress", "data": json.dumps(figure.as_json())}

    return EventSourceResponse(events(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/editions/{edition_id}/{action}")
async def act(
    edition_id: EditionId,
    action: str,
    request: Request,
    login: Editor,
    console: ConsoleDep,
    context: ContextDep,
) -> Response:
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}")
    await checked(request, login, console)
    try:
        if action == "pause":
            await service.pause(context, edition_id, f"paused by {login.account.name} in the console")
        elif action == "resume":
            await service.resume(context, edition_id)
        else:
            await service.cancel(context, edition_id)
    except InvalidInput:
        return RedirectResponse(f"{PREFIX}/editions/{edition_id}?refused={action}", status_code=303)
    await audit.record(
        context,
        login.account.name,
        f"edition.{action}",
        target=f"edition {edition_id}",
        address=address(request),
    )
    return RedirectResponse(f"{PREFIX}/editions/{edition_id}?done={action}", status_code=303)


@router.get("/editions/{edition_id}/preview", response_class=HTMLResponse)
async def preview(
    edition_id: EditionId, login: Viewer, console: ConsoleDep, context: ContextDep, done: str = ""
) -> HTMLResponse:
    """Each variant as a reader sees it, at a desktop and a phone width, and its text part."""
    notice = "A test copy went out." if done == "test" else ""
    return await _preview_page(console, login, context, edition_id, notice=notice)


@router.get("/editions/{edition_id}/variants/{variant_id}.html", response_class=HTMLResponse)
async def variant_html(
    edition_id: EditionId, variant_id: EditionId, login: Viewer, context: ContextDep
) -> HTMLResponse:
    return HTMLResponse(await previews.html(context, edition_id, variant_id), headers=EMAIL_FRAME_HEADERS)


@router.post("/editions/{edition_id}/variants/{variant_id}/test")
async def test_send(
    edition_id: EditionId,
    variant_id: EditionId,
    request: Request,
    login: Editor,
    console: ConsoleDep,
    context: ContextDep,
) -> Response:
    form = await checked(request, login, console)
    email = form.get("email", "").strip()
    try:
        reply = await previews.send_test(context, edition_id, variant_id, email)
    except InvalidInput as exc:
        return await _preview_error(console, login, context, edition_id, str(exc), 422)
    except ConnectionError as exc:
        return await _preview_error(console, login, context, edition_id, f"smtp: {exc}", 502)
    if reply.code >= 400:
        return await _preview_error(
            console, login, context, edition_id, f"smtp: the relay refused it: {reply}", 502
        )
    await audit.record(
        context,
        login.account.name,
        "edition.test_send",
        target=f"edition {edition_id}",
        detail=f"variant {variant_id} to {email}",
        address=address(request),
    )
    return RedirectResponse(f"{PREFIX}/editions/{edition_id}/preview?done=test", status_code=303)


async def _preview_error(
    console: Console, login: Login, context: AppContext, edition_id: int, message: str, status: int
) -> HTMLResponse:
    return await _preview_page(console, login, context, edition_id, error=message, status=status)


async def _preview_page(
    console: Console,
    login: Login,
    context: AppContext,
    edition_id: int,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    report = await service.report(context, edition_id, live=console.live_counts(context))
    return console.render(
        "preview.html",
        login,
        status,
        headers={"Content-Security-Policy": PREVIEW_PAGE_CSP},
        report=report,
        variants=await previews.variants(context, edition_id),
        notice=notice,
        error=error,
        nav="editions",
    )


@router.get("/audit", response_class=HTMLResponse)
async def audit_trail(
    login: Owner, console: ConsoleDep, context: ContextDep, before: Annotated[int | None, Query(ge=1)] = None
) -> HTMLResponse:
    entries = await audit.recent(context, before=before)
    older = entries[-1].id if len(entries) == audit.PAGE else None
    return console.render("audit.html", login, entries=entries, older=older, nav="audit")
