"""The console's subscribers pages: search and list, one reader's record (subscriptions, consent,
deliveries, bounces); for owners, add, erase, CSV import and export. Every action is audited."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from newsletter.console import audit
from newsletter.console import subscribers as queries
from newsletter.console.imports import ImportJob, Imports
from newsletter.console.sessions import Login
from newsletter.context import AppContext
from newsletter.database.models import Subscriber, utcnow
from newsletter.errors import InvalidInput, NotFound
from newsletter.states import SubscriberStatus
from newsletter.subscriptions.adding import Outcome, add_batch
from newsletter.subscriptions.addresses import Address, clean_text
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import default_newsletters
from newsletter.subscriptions.csvfiles import COLUMNS
from newsletter.subscriptions.erasure import erase
from newsletter.subscriptions.exporting import export_csv
from newsletter.subscriptions.forms import parse_entry
from newsletter.subscriptions.importing import ImportReport
from newsletter.subscriptions.listing import check_status, choices_of
from newsletter.subscriptions.service import find_by_key
from newsletter.web.console import PREFIX, Console, ConsoleDep, Owner, Viewer, address, checked
from newsletter.web.deps import ContextDep
from newsletter.web.security import SECURITY_HEADERS

router = APIRouter(prefix=PREFIX, include_in_schema=False)
IMPORT_PATH = f"{PREFIX}/subscribers/import"  # its body limit is console.max_import_bytes
SubscriberId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
STATUSES = tuple(SubscriberStatus)
MAX_QUERY_CHARS = 320
# The consent record's source for a change made here (with the operator's address).
SOURCE = "console"
DONE = {
    Outcome.ADDED: "Added.",
    Outcome.UPDATED: "That address was already here: its newsletters and status were updated.",
    "erased": "Erased: the address and personal data are gone; a hashed suppression entry is kept.",
}


@dataclass(frozen=True)
class Filled:
    """The add form as it was sent, to show it again with its error."""

    email: str = ""
    newsletters: list[str] = field(default_factory=list)
    confirmed: bool = False


def _actor(request: Request) -> Actor:
    return Actor(SOURCE, address(request) or None)


def _names(context: AppContext) -> dict[str, str]:
    return {n.id: n.name for n in context.settings.newsletters}


@router.get("/subscribers", response_class=HTMLResponse)
async def subscribers(
    login: Viewer,
    console: ConsoleDep,
    context: ContextDep,
    q: Annotated[str, Query(max_length=1000)] = "",
    status: Annotated[str, Query(max_length=100)] = "",
    before: Before = None,
) -> HTMLResponse:
    """Newest first, by address prefix and status, 50 a page."""
    try:
        prefix = _prefix(q)
        wanted = check_status(status)
    except InvalidInput as exc:
        return await _list_page(login, console, context, error=f"{exc.field}: {exc.message}", status_code=422)
    return await _list_page(login, console, context, q=prefix, status=wanted, before=before)


def _prefix(q: str) -> str:
    return clean_text("q", q, max_chars=MAX_QUERY_CHARS).strip().lower()


async def _list_page(
    login: Login,
    console: Console,
    context: AppContext,
    *,
    q: str = "",
    status: str | None = None,
    before: int | None = None,
    error: str = "",
    status_code: int = 200,
    filled: Filled | None = None,
) -> HTMLResponse:
    # A bad search shows no list; a bad add form shows the first page under it.
    found = None
    if not error or filled is not None:
        found = await queries.page(context, prefix=q, status=status, before=before)
    return console.render(
        "subscribers.html",
        login,
        status_code,
        page=found,
        older=_query(q, status, found.older) if found and found.older else None,
        newest=_query(q, status, None),
        q=q,
        status=status or "",
        before=before,
        statuses=STATUSES,
        names=_names(context),
        error=error,
        filled=filled or Filled(newsletters=default_newsletters(context.settings)),
        nav="subscribers",
    )


def _query(q: str, status: str | None, before: int | None) -> str:
    """The listing's query string, keeping the search, for the page below `before`."""
    kept = {k: v for k, v in (("q", q), ("status", status), ("before", before)) if v}
    return "?" + urlencode(kept) if kept else ""


@router.post("/subscribers")
async def add(request: Request, login: Owner, console: ConsoleDep, context: ContextDep) -> Response:
    """One subscriber, on the operator's word (as the API's add): pending with a confirmation
    email unless `confirmed`; an existing address is updated."""
    form = await checked(request, login, console)
    listed = (await request.form()).getlist("newsletters")
    filled = Filled(
        form.get("email", ""), [n for n in listed if isinstance(n, str)], form.get("confirmed") == "yes"
    )
    try:
        entry = parse_entry(
            context.settings,
            {"email": filled.email, "newsletters": filled.newsletters, "confirmed": filled.confirmed},
        )
    except InvalidInput as exc:
        return await _list_page(
            login, console, context, error=f"{exc.field}: {exc.message}", status_code=422, filled=filled
        )
    async with context.db.session() as session, session.begin():
        (result,) = await add_batch(
            session, settings=context.settings, entries=[entry], actor=_actor(request)
        )
        stored = await find_by_key(session, entry.address.key)
        chosen = await choices_of(session, [stored.id]) if stored else {}
    if result.outcome is Outcome.SUPPRESSED or stored is None:
        return await _list_page(
            login, console, context, error=f"email: refused: {result.reason}", status_code=409, filled=filled
        )
    await audit.record(
        context,
        login.account.name,
        "subscriber.add",
        target=f"subscriber {stored.id}",
        # Never the address: the audit trail outlives an erasure.
        detail=f"{result.outcome.value}; status {stored.status}; "
        f"newsletters {', '.join(chosen.get(stored.id, {})) or 'none'}",
        address=address(request),
    )
    return RedirectResponse(f"{PREFIX}/subscribers/{stored.id}?done={result.outcome.value}", status_code=303)


@router.get("/subscribers/import", response_class=HTMLResponse)
async def import_form(login: Owner, console: ConsoleDep) -> HTMLResponse:
    return _import_page(console, login)


def _import_page(
    console: Console,
    login: Login,
    *,
    report: ImportReport | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return console.render(
        "subscriber_import.html",
        login,
        status_code,
        report=report,
        error=error,
        columns=COLUMNS,
        nav="subscribers",
    )


@router.post(IMPORT_PATH.removeprefix(PREFIX), response_model=None)
async def import_(
    request: Request, login: Owner, console: ConsoleDep, context: ContextDep
) -> HTMLResponse | RedirectResponse:
    """A CSV upload, imported in the background (the CLI's columns): its page shows the progress,
    then the report."""
    try:
        form = await checked(request, login, console)
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _import_page(console, login, error="file: choose a CSV file to import", status_code=422)
        folder = await _saved(upload)
    finally:
        await request.close()  # the upload's temporary file, refused or not
    options = {"skip_invalid": form.get("skip_invalid") == "yes", "confirmed": form.get("confirmed") == "yes"}
    who, where = login.account.name, address(request)

    async def finished(job: ImportJob) -> None:
        if job.report is None:  # a file that could not be read changed nothing
            return
        detail = _counts(job.report)
        await audit.record(
            context, who, "subscriber.import", target="subscribers", detail=detail, address=where
        )

    # Readers who come from a file are the import's, as from the CLI; the console's address kept.
    actor = Actor("import", where or None)
    job = _imports(request).start(context, folder, who, actor, options, finished)
    return RedirectResponse(f"{IMPORT_PATH}/{job.id}", status_code=303)


@router.get(IMPORT_PATH.removeprefix(PREFIX) + "/{job_id}", response_class=HTMLResponse)
async def import_job(job_id: str, request: Request, login: Owner, console: ConsoleDep) -> HTMLResponse:
    job = _job(request, job_id, login)
    if job.phase == "failed":
        return _import_page(console, login, error=job.error, status_code=422)
    if job.report is not None:
        return _import_page(console, login, report=job.report, status_code=200 if job.report.written else 422)
    return console.render("subscriber_import_job.html", login, job=job, nav="subscribers")


@router.get(IMPORT_PATH.removeprefix(PREFIX) + "/{job_id}/progress")
async def import_progress(job_id: str, request: Request, login: Owner) -> EventSourceResponse:
    """Server-sent events: the import's phase and rows, twice a second until it has finished."""
    job = _job(request, job_id, login)
    imports = _imports(request)

    async def events() -> AsyncIterator[dict[str, str]]:
        async for state in imports.watch(job):
            yield {"event": "progress", "data": json.dumps(state.as_json())}

    return EventSourceResponse(events(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _imports(request: Request) -> Imports:
    imports: Imports | None = getattr(request.app.state, "imports", None)
    if imports is None:
        imports = request.app.state.imports = Imports()
    return imports


def _job(request: Request, job_id: str, login: Login) -> ImportJob:
    """The account's own import (an import it did not start, or one forgotten since, is a 404)."""
    job = _imports(request).find(job_id, login.account.name)
    if job is None:
        raise NotFound("no such import (imports are kept while the service runs, the last 50)")
    return job


async def _saved(upload: UploadFile) -> Path:
    """import_csv reads a file by path: the upload is copied to one (the job removes it)."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="newsletter-import-"))
    # Named "file": a problem with the file itself is reported as "file line 3: …".
    await asyncio.to_thread(_save, upload, folder / "file")
    return folder


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)


def _counts(report: ImportReport) -> str:
    counts = (
        f"rows {report.rows}: added {report.added}, updated {report.updated}, "
        f"invalid {report.invalid}, suppressed {report.suppressed}"
    )
    return counts if report.written else counts + " (nothing imported)"


@router.get("/subscribers/export")
async def export(
    request: Request,
    login: Owner,
    console: ConsoleDep,
    context: ContextDep,
    status: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Every subscriber with an address (or those of one status) as CSV, the CLI export's columns."""
    try:
        wanted = check_status(status)
    except InvalidInput as exc:
        return await _list_page(login, console, context, error=f"{exc.field}: {exc.message}", status_code=422)
    # Written to a file first, then sent from it: a slow download must not hold a database
    # connection (SQLite has one per process).
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="newsletter-export-"))
    try:
        count = await export_csv(context.db, folder / "subscribers.csv", status=wanted)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    await audit.record(
        context,
        login.account.name,
        "subscriber.export",
        target="subscribers",
        detail=f"{count} subscribers; status {wanted or 'any'}",
        address=address(request),
    )
    return FileResponse(
        folder / "subscribers.csv",
        media_type="text/csv; charset=utf-8",
        filename=f"subscribers-{wanted or 'all'}-{utcnow():%Y-%m-%d}.csv",
        headers=SECURITY_HEADERS,
        background=BackgroundTask(shutil.rmtree, folder, True),
    )


@router.get("/subscribers/{subscriber_id}", response_class=HTMLResponse)
async def subscriber(
    subscriber_id: SubscriberId, login: Viewer, console: ConsoleDep, context: ContextDep, done: str = ""
) -> HTMLResponse:
    return console.render(
        "subscriber.html",
        login,
        record=await queries.record(context, subscriber_id),
        names=_names(context),
        notice=DONE.get(done, ""),
        nav="subscribers",
    )


async def _erasable(context: AppContext, subscriber_id: int) -> Subscriber:
    found = await queries.find(context, subscriber_id)
    if found.email is None or found.email_key is None:
        raise NotFound(f"subscriber {subscriber_id} is already erased")
    return found


@router.get("/subscribers/{subscriber_id}/erase", response_class=HTMLResponse)
async def erase_form(
    subscriber_id: SubscriberId, login: Owner, console: ConsoleDep, context: ContextDep
) -> HTMLResponse:
    """What erasure removes, and a form that asks to confirm it."""
    found = await _erasable(context, subscriber_id)
    return console.render("subscriber_erase.html", login, subscriber=found, error="", nav="subscribers")


@router.post("/subscribers/{subscriber_id}/erase")
async def erase_(
    subscriber_id: SubscriberId, request: Request, login: Owner, console: ConsoleDep, context: ContextDep
) -> Response:
    form = await checked(request, login, console)
    found = await _erasable(context, subscriber_id)
    if form.get("confirm") != "yes":
        error = "confirm: tick the box to confirm the erasure; nothing was erased."
        return console.render(
            "subscriber_erase.html", login, 422, subscriber=found, error=error, nav="subscribers"
        )
    await _erase(context, found, _actor(request))
    await audit.record(
        context,
        login.account.name,
        "subscriber.erase",
        target=f"subscriber {subscriber_id}",
        address=address(request),
    )
    return RedirectResponse(f"{PREFIX}/subscribers/{subscriber_id}?done=erased", status_code=303)


async def _erase(context: AppContext, found: Subscriber, actor: Actor) -> None:
    assert found.email is not None and found.email_key is not None
    async with context.db.session() as session, session.begin():
        erased = await erase(session, address=Address(found.email, found.email_key), actor=actor)
        if erased != found.id:  # the address changed hands since the page was read: undo
            raise NotFound(f"subscriber {found.id} no longer has that address")
