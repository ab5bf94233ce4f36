"""The console's articles page: the latest articles, searched by words of the title and by
section; editors add one by hand, hide one from the next editions or pin one as their lead.
Every change is recorded in the audit trail."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from newsletter.console import articles, audit
from newsletter.console.articles import Cursor, Draft
from newsletter.console.sessions import Login
from newsletter.context import AppContext
from newsletter.errors import InvalidInput, NotFound
from newsletter.moments import parse_moment
from newsletter.subscriptions.addresses import clean_text
from newsletter.web.console import PREFIX, Console, ConsoleDep, Editor, Viewer, address, checked
from newsletter.web.deps import ContextDep

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ArticleId = Annotated[int, Path(ge=1, le=2**31 - 1)]
MAX_QUERY_CHARS = 200
LABELS = {
    "title": "Title",
    "url": "URL",
    "summary": "Summary",
    "section": "Section",
    "published_at": "Published",
}
# action: (the change, whether it sets or clears the flag, what the page then says)
ACTIONS = {
    "hide": (articles.set_hidden, True, "Hidden: no edition selected from now on carries it."),
    "unhide": (articles.set_hidden, False, "Shown again: the next editions may carry it."),
    "pin": (articles.set_pinned, True, "Pinned: it leads the next edition of each newsletter it belongs to."),
    "unpin": (articles.set_pinned, False, "Unpinned."),
}
DONE = {"add": "Article added.", **{action: said for action, (_, _, said) in ACTIONS.items()}}


@router.get("/articles", response_class=HTMLResponse)
async def articles_page(
    login: Viewer,
    console: ConsoleDep,
    context: ContextDep,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
    section: Annotated[str, Query(max_length=100)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    before_at: Annotated[str, Query(max_length=40)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """The latest articles, newest first, 50 a page."""
    try:
        q = clean_text("q", q, max_chars=MAX_QUERY_CHARS)
    except InvalidInput as exc:
        return await _page(login, console, context, error=f"Words: {exc.message}.", invalid="q")
    if section and section not in context.settings.known_sections():
        error = "Section: choose one of the sections listed."
        return await _page(login, console, context, q=q, error=error, invalid="filter-section")
    cursor = _cursor(before, before_at)
    return await _page(
        login, console, context, q=q, section=section, before=cursor, notice=DONE.get(done, "")
    )


def _cursor(before: int | None, before_at: str) -> Cursor | None:
    if before is None or not before_at:
        return None
    try:
        return Cursor(parse_moment(before_at), before)
    except ValueError:
        return None  # a mangled link: the first page


async def _page(
    login: Login,
    console: Console,
    context: AppContext,
    *,
    q: str = "",
    section: str = "",
    before: Cursor | None = None,
    notice: str = "",
    error: str = "",
    invalid: str = "",
    draft: Draft | None = None,
) -> HTMLResponse:
    # A bad search shows no list; a bad add form shows the first page under it.
    found = (
        None if error and draft is None else await articles.page(context, q=q, section=section, before=before)
    )
    return console.render(
        "articles.html",
        login,
        422 if error else 200,
        page=found,
        older=_query(q, section, found.older) if found and found.older else None,
        here=_query(q, section, before),
        q=q,
        section=section,
        sections=context.settings.known_sections(),
        notice=notice,
        error=error,
        invalid=invalid,
        draft=draft or Draft(),
        nav="articles",
    )


def _query(q: str, section: str, before: Cursor | None) -> str:
    """The listing's query string, keeping the search, for the page below `before`."""
    kept: dict[str, str | int] = {k: v for k, v in (("q", q), ("section", section)) if v}
    if before is not None:
        kept.update(before=before.id, before_at=before.published_at.isoformat())
    return "?" + urlencode(kept) if kept else ""


@router.post("/articles")
async def add(request: Request, login: Editor, console: ConsoleDep, context: ContextDep) -> Response:
    """One article by hand, checked and stored as the API stores a pushed one."""
    form = await checked(request, login, console)
    draft = Draft(*(form.get(name, "") for name in ("title", "url", "summary", "section", "published_at")))
    try:
        article_id, title = await articles.add(context, draft)
    except InvalidInput as exc:
        error = f"{LABELS.get(exc.field, exc.field)}: {exc.message}."
        return await _page(login, console, context, error=error, invalid=exc.field, draft=draft)
    await _record(request, context, login, "add", article_id, title)
    return RedirectResponse(f"{PREFIX}/articles?done=add#article-{article_id}", status_code=303)


@router.post("/articles/{article_id}/{action}")
async def act(
    article_id: ArticleId,
    action: str,
    request: Request,
    login: Editor,
    console: ConsoleDep,
    context: ContextDep,
) -> Response:
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}")
    form = await checked(request, login, console)
    change, value, _ = ACTIONS[action]
    title = await change(context, article_id, value)
    await _record(request, context, login, action, article_id, title)
    back = _back(context, form.get("back", ""))
    joiner = "&" if back else "?"
    return RedirectResponse(
        f"{PREFIX}/articles{back}{joiner}done={action}#article-{article_id}", status_code=303
    )


def _back(context: AppContext, given: str) -> str:
    """The listing the form came from (its search and page), each part checked again."""
    parts = {k: v[0] for k, v in parse_qs(given.removeprefix("?")).items() if v}
    try:
        q = clean_text("q", parts.get("q", ""), max_chars=MAX_QUERY_CHARS)
    except InvalidInput:
        q = ""
    section = parts.get("section", "")
    if section not in context.settings.known_sections():
        section = ""
    before = parts.get("before", "")
    cursor = (
        _cursor(int(before), parts.get("before_at", "")) if before.isdigit() and len(before) < 11 else None
    )
    return _query(q, section, cursor)


async def _record(
    request: Request, context: AppContext, login: Login, action: str, article_id: int, title: str
) -> None:
    await audit.record(
        context,
        login.account.name,
        f"article.{action}",
        target=f"article {article_id}",
        detail=title,
        address=address(request),
    )
