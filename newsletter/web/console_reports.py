"""The console's reports: bounces and complaints, the suppression list (kept by owners) and
engagement (top articles, and one edition's clicks with its chart)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from newsletter.bounces.queries import KINDS
from newsletter.console import audit, reports
from newsletter.console.sessions import Login
from newsletter.context import AppContext
from newsletter.database.models import utcnow
from newsletter.engagement.filtering import Filtered
from newsletter.engagement.plot import clicks_svg
from newsletter.engagement.stats import edition_stats, top_articles
from newsletter.errors import InvalidInput
from newsletter.subscriptions.addresses import Address, clean_text, normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.suppressions import add_by_operator, lift
from newsletter.web.console import PREFIX, Console, ConsoleDep, Owner, Viewer, address, checked
from newsletter.web.deps import ContextDep

router = APIRouter(prefix=PREFIX, include_in_schema=False)
EditionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# Query values arrive as text and are checked here: a bad one shows the page with its error.
Text = Annotated[str, Query(max_length=400)]
MAX_ID = 2**63 - 1
DEFAULT_DAYS = 7
TOP = 10
TOP_SECONDS = 60.0
DONE = {
    "added": "Added to the suppression list: nothing more is sent to that address.",
    "already": "That address was already on the suppression list.",
    "removed": "Removed from the suppression list. The reader is not subscribed again.",
}
LABELS = {
    "kind": "Kind",
    "before": "Page",
    "q": "Address starts with",
    "email": "Address",
    "reason": "Reason",
    "days": "Period in days",
}
MAX_REASON = 200
APART = {
    Filtered.SCANNER: "scanner: too soon after sending",
    Filtered.BOT: "bot: by its user agent",
    Filtered.HEAD: "head: a HEAD request",
    Filtered.PREFETCH: "prefetch: a browser loading ahead",
    Filtered.REPEAT: "repeat: the same client and link within a minute",
    Filtered.RATE: "rate: a client clicking too often",
}


def _problem(exc: InvalidInput) -> str:
    return f"{LABELS.get(exc.field, exc.field)} ({exc.field}): {exc.message}"


def _whole(text: str, field: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidInput(field, f"must be a whole number from {low} to {high}")
    return int(text)


@router.get("/bounces", response_class=HTMLResponse)
async def bounces(
    login: Viewer, console: ConsoleDep, context: ContextDep, kind: Text = "", before: Text = ""
) -> HTMLResponse:
    """Bounces and complaints, newest first, by kind."""
    try:
        if kind and kind not in KINDS:
            raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}")
        below = _whole(before, "before", 1, MAX_ID) if before else None
    except InvalidInput as exc:
        return _bounces_page(console, login, kind="", rows=None, error=_problem(exc))
    rows = await reports.bounces(context, kind=kind or None, before=below, limit=reports.PAGE)
    return _bounces_page(console, login, kind=kind, rows=rows, first=below is None)


def _bounces_page(
    console: Console,
    login: Login,
    *,
    kind: str,
    rows: list[reports.Returned] | None,
    error: str = "",
    first: bool = True,
) -> HTMLResponse:
    older = rows[-1].event.id if rows and len(rows) == reports.PAGE else None
    return console.render(
        "bounces.html",
        login,
        422 if error else 200,
        kinds=KINDS,
        kind=kind,
        rows=rows,
        older=older,
        first=first,
        error=error,
        nav="bounces",
    )


@router.get("/suppressions", response_class=HTMLResponse)
async def suppressions(
    login: Viewer,
    console: ConsoleDep,
    context: ContextDep,
    q: Text = "",
    before: Text = "",
    done: str = "",
) -> HTMLResponse:
    """The suppression list, newest first, by address prefix."""
    try:
        prefix = clean_text("q", q, max_chars=320).strip()
        if before:
            reports.parse_cursor(before)
    except InvalidInput as exc:
        return await _suppressions_page(console, login, context, error=_problem(exc), status_code=422)
    return await _suppressions_page(
        console, login, context, prefix=prefix, before=before or None, notice=DONE.get(done, "")
    )


async def _suppressions_page(
    console: Console,
    login: Login,
    context: AppContext,
    *,
    prefix: str = "",
    before: str | None = None,
    status_code: int = 200,
    **shown: Any,
) -> HTMLResponse:
    entries = await reports.suppressions(context, prefix=prefix, before=before, limit=reports.PAGE)
    older = reports.cursor_of(entries[-1]) if len(entries) == reports.PAGE else None
    data: dict[str, Any] = {"notice": "", "error": "", "email": "", "reason": "", **shown}
    return console.render(
        "suppressions.html",
        login,
        status_code,
        entries=entries,
        q=prefix,
        older=older,
        first=before is None,
        nav="bounces",
        **data,
    )


@router.post("/suppressions")
async def suppress(request: Request, login: Owner, console: ConsoleDep, context: ContextDep) -> Response:
    """Never mail an address again; a reader who has it is unsubscribed from everything."""
    form = await checked(request, login, console)
    typed, reason = form.get("email", ""), form.get("reason", "")
    try:
        why = clean_text("reason", reason, max_chars=MAX_REASON).strip()
        local = context.settings.subscriptions.allow_local_domains
        chosen = normalise_address(typed, local_domains=local)
    except InvalidInput as exc:
        shown = {"email": typed[:320], "reason": reason[:MAX_REASON], "error": _problem(exc)}
        return await _suppressions_page(console, login, context, status_code=422, **shown)
    async with context.db.session() as session, session.begin():
        added = await add_by_operator(session, chosen, actor=Actor("console", address(request)))
    detail = why if added else "; ".join(part for part in ("already listed", why) if part)
    await _record(request, login, context, "suppression.add", chosen.key, detail)
    return RedirectResponse(f"{PREFIX}/suppressions?done={'added' if added else 'already'}", status_code=303)


@router.post("/suppressions/remove")
async def unsuppress(request: Request, login: Owner, console: ConsoleDep, context: ContextDep) -> Response:
    """Lift a suppression (404 when the address is not listed); the reader is not re-subscribed."""
    form = await checked(request, login, console)
    try:
        # The key as listed, not re-validated: a complaint's address may not pass today's checks.
        key = clean_text("email", form.get("email", ""), max_chars=320).strip().lower()
    except InvalidInput as exc:
        return await _suppressions_page(console, login, context, status_code=422, error=_problem(exc))
    async with context.db.session() as session, session.begin():
        await lift(session, Address(key, key))
    await _record(request, login, context, "suppression.remove", key, "")
    return RedirectResponse(f"{PREFIX}/suppressions?done=removed", status_code=303)


async def _record(
    request: Request, login: Login, context: AppContext, action: str, target: str, detail: str
) -> None:
    await audit.record(
        context, login.account.name, action, target=target, detail=detail, address=address(request)
    )


@router.get("/engagement", response_class=HTMLResponse)
async def engagement(
    login: Viewer, console: ConsoleDep, context: ContextDep, days: Text = "", before: Text = ""
) -> HTMLResponse:
    """The most clicked articles over a period, and the tracked editions."""
    try:
        period = _whole(days, "days", 1, 365) if days else DEFAULT_DAYS
        below = _whole(before, "before", 1, MAX_ID) if before else None
    except InvalidInput as exc:
        return _engagement_page(console, login, days=str(DEFAULT_DAYS), error=_problem(exc))
    # Every click of the period is counted: at most once a minute per process and period.
    top = await console.snapshots.get(
        ("top-articles", period),
        lambda: top_articles(context, since=utcnow() - timedelta(days=period), limit=TOP),
        TOP_SECONDS,
    )
    editions = await reports.tracked_editions(context, before=below, limit=reports.PAGE)
    return _engagement_page(console, login, days=str(period), top=top, editions=editions, first=below is None)


def _engagement_page(
    console: Console, login: Login, *, days: str, error: str = "", **shown: Any
) -> HTMLResponse:
    data: dict[str, Any] = {"top": None, "editions": [], "first": True, **shown}
    editions = data["editions"]
    data["older"] = editions[-1].id if len(editions) == reports.PAGE else None
    return console.render(
        "engagement.html",
        login,
        422 if error else 200,
        days=days,
        error=error,
        names={n.id: n.name for n in console.settings.newsletters},
        nav="engagement",
        **data,
    )


@router.get("/engagement/{edition_id}", response_class=HTMLResponse)
async def edition_engagement(
    edition_id: EditionId, login: Viewer, console: ConsoleDep, context: ContextDep
) -> HTMLResponse:
    """One edition's clicks: per article and section, rate, what was set apart, when, a chart."""
    stats = await edition_stats(context, edition_id)
    tracked = stats.tracking != "off"
    per_reader = stats.tracking == "per_reader"
    return console.render(
        "engagement_edition.html",
        login,
        stats=stats,
        name=_name(context, stats.newsletter),
        tracked=tracked,
        per_reader=per_reader,
        section_readers=await reports.section_readers(context, edition_id) if per_reader else {},
        filtered=[(label, stats.filtered.get(reason.value, 0)) for reason, label in APART.items()],
        timing=reports.timing_rows(stats.timing),
        # Our own drawing: plot.py escapes every text it writes (titles, names).
        chart=Markup(clicks_svg(stats)) if tracked else "",
        nav="engagement",
    )


def _name(context: AppContext, newsletter_id: str) -> str:
    return next((n.name for n in context.settings.newsletters if n.id == newsletter_id), newsletter_id)
