"""The public face of the archive: `/archive`, each newsletter's index and feed, each edition's
page, and `/sitemap.xml`. Pages carry nothing personal; answers are cached (see PageCache) and
revalidated with ETags."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated
from xml.etree import ElementTree

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from newsletter.archive import store
from newsletter.archive.cache import Answer, CachedPage, PageCache
from newsletter.archive.content import EditionContent, edition_content
from newsletter.archive.feed import atom_feed, edition_updated
from newsletter.config import NewsletterConfig, Settings
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Edition
from newsletter.editions.selection import narrowed
from newsletter.rendering.archive_links import ArchiveLinks
from newsletter.web.deps import ContextDep
from newsletter.web.pages import Pages
from newsletter.web.security import SECURITY_HEADERS

# Seconds an answer is kept in this process (and the most an edition taken down by another
# process stays up here); what browsers and proxies may keep before revalidating.
SERVER_SECONDS = 5
BROWSER_SECONDS = 60
PER_PAGE = 20
MAX_SECTIONS = 50
FEED_ENTRIES = 20
# The sitemap protocol's limit for one file.
SITEMAP_URLS = 50_000
# Article images come from the publisher's own servers.
ARCHIVE_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace(
    "img-src 'self' data:", "img-src 'self' data: https: http:"
)
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"

router = APIRouter(include_in_schema=False)


class Archive:
    """Built once per app: the links, the cache, and the answers it fills."""

    def __init__(self, settings: Settings, pages: Pages) -> None:
        self.settings = settings
        self.pages = pages
        self.links = ArchiveLinks(settings)
        self.cache = PageCache(SERVER_SECONDS)

    def newsletter(self, newsletter_id: str, *, public_only: bool) -> NewsletterConfig:
        """The newsletter whose archive is asked for; 404 when unknown, off, or (for its index
        and feed) private."""
        for newsletter in self.settings.newsletters:
            if newsletter.id == newsletter_id and newsletter.archive != "off":
                if public_only and newsletter.archive != "public":
                    break
                return newsletter
        raise HTTPException(404)

    def public(self) -> list[NewsletterConfig]:
        return [n for n in self.settings.newsletters if n.archive == "public"]

    def html(self, template: str, *, private_edition: int | None = None, **data: object) -> CachedPage:
        body = self.pages.env.get_template(template).render(**data).encode()
        headers = _headers(private=private_edition is not None)
        return CachedPage(body, "text/html; charset=utf-8", headers, private_edition)

    def edition_url(self, newsletter: NewsletterConfig, edition: Edition, sections: list[str]) -> str:
        """A page's address as pages and feeds show it: never with a private archive's key."""
        return self.links.edition_url(
            newsletter, edition.id, edition.edition_date, edition.sequence, sections, keyed=False
        )


def _headers(*, private: bool) -> dict[str, str]:
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": ARCHIVE_CSP,
        "Cache-Control": f"{'private' if private else 'public'}, max-age={BROWSER_SECONDS}",
    }
    if private:
        headers["X-Robots-Tag"] = "noindex, nofollow"
    return headers


async def get_archive(request: Request) -> Archive:
    archive: Archive = request.app.state.archive
    return archive


ArchiveDep = Annotated[Archive, Depends(get_archive)]


def _answer(
    request: Request, page: Answer, key: str | None = None, archive: Archive | None = None
) -> Response:
    if page is None:
        raise HTTPException(404)
    if page.private_edition is not None:
        assert archive is not None
        if not key or not archive.links.opens(page.private_edition, key):
            raise HTTPException(404)
    if page.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=page.answer_headers)
    return _PageAnswer(page)


class _PageAnswer(Response):
    """`Response(page.body, media_type=page.media_type, headers=page.answer_headers)`, its
    headers encoded once when the page was kept rather than on every answer."""

    def __init__(self, page: CachedPage) -> None:
        self.status_code = 200
        self.media_type = page.media_type
        self.background = None
        self.body = page.body
        self.raw_headers = list(page.raw_headers)


@router.get("/archive")
async def archive_home(request: Request, archive: ArchiveDep, context: ContextDep) -> Response:
    async def build() -> Answer:
        latest: list[tuple[NewsletterConfig, EditionContent | None, str]] = []
        async with _reading(context) as session:
            for newsletter in archive.public():
                newest = await store.published_editions(session, newsletter.id, limit=1)
                edition = newest[0] if newest else None
                content = None
                if edition is not None:
                    content = await edition_content(session, context.settings, newsletter, edition)
                url = archive.edition_url(newsletter, edition, []) if edition is not None else ""
                latest.append((newsletter, content, url))
        return archive.html("archive_home.html", newsletters=latest)

    return _answer(request, await archive.cache.get(("home",), build))


@router.get("/archive/{newsletter_id}")
async def archive_index(
    newsletter_id: str,
    request: Request,
    archive: ArchiveDep,
    context: ContextDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    newsletter = archive.newsletter(newsletter_id, public_only=True)

    async def build() -> Answer:
        async with _reading(context) as session:
            editions = await store.published_editions(
                session, newsletter.id, limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE
            )
            shown = editions[:PER_PAGE]
            if not shown and page > 1:
                return None
            rows = [
                (
                    await edition_content(session, context.settings, newsletter, edition),
                    archive.edition_url(newsletter, edition, []),
                )
                for edition in shown
            ]
        return archive.html(
            "archive_index.html",
            newsletter=newsletter,
            rows=rows,
            page=page,
            newer=page - 1 if page > 1 else None,
            older=page + 1 if len(editions) > PER_PAGE else None,
            index_url=archive.links.base_url + archive.links.index_path(newsletter.id),
        )

    return _answer(request, await archive.cache.get(("index", newsletter.id, page), build))


@router.get("/archive/{newsletter_id}/feed.xml")
async def archive_feed(
    newsletter_id: str, request: Request, archive: ArchiveDep, context: ContextDep
) -> Response:
    newsletter = archive.newsletter(newsletter_id, public_only=True)

    async def build() -> Answer:
        async with _reading(context) as session:
            editions = await store.published_editions(session, newsletter.id, limit=FEED_ENTRIES)
            entries = [
                (
                    await edition_content(session, context.settings, newsletter, edition),
                    archive.edition_url(newsletter, edition, []),
                )
                for edition in editions
            ]
        index_url = archive.links.base_url + archive.links.index_path(newsletter.id)
        body = atom_feed(
            context.settings, newsletter, entries, index_url=index_url, feed_url=f"{index_url}/feed.xml"
        )
        return CachedPage(body, "application/atom+xml; charset=utf-8", _headers(private=False))

    return _answer(request, await archive.cache.get(("feed", newsletter.id), build))


# An edition's page is what every email's "View in your browser" opens, and most answers come from
# the cache: its routes take the request alone and read the rest from it (FastAPI's dependencies
# and declared query parameters cost more per request than the answer itself).
@router.get("/archive/{newsletter_id}/{day}")
async def archive_edition(request: Request) -> Response:
    params = request.path_params
    return await _edition(request, params["newsletter_id"], params["day"], 0)


@router.get("/archive/{newsletter_id}/{day}/{number}")
async def archive_extra_edition(request: Request, number: int) -> Response:
    """The day's second, third… edition (`send --new`)."""
    if not 2 <= number <= 1000:
        raise HTTPException(404)
    params = request.path_params
    return await _edition(request, params["newsletter_id"], params["day"], number - 1)


async def _edition(request: Request, newsletter_id: str, day_text: str, sequence: int) -> Response:
    archive: Archive = request.app.state.archive
    context: AppContext = request.app.state.context
    query = request.query_params
    sections_text, key = query.get("sections"), query.get("key")
    newsletter = archive.newsletter(newsletter_id, public_only=False)
    day = _date(day_text)
    chosen = _sections(archive.settings, newsletter, sections_text)

    async def build() -> Answer:
        async with _reading(context) as session:
            edition = await store.published_edition(session, newsletter.id, day, sequence)
            if edition is None:
                return None
            content = await edition_content(session, context.settings, newsletter, edition, chosen)
        private = newsletter.archive == "private"
        return archive.html(
            "archive_edition.html",
            private_edition=edition.id if private else None,
            newsletter=newsletter,
            content=content,
            canonical_url=None if private else archive.edition_url(newsletter, edition, chosen),
            index_url=None if private else archive.links.base_url + archive.links.index_path(newsletter.id),
            indexable=not private,
        )

    page = await archive.cache.get(("edition", newsletter.id, day, sequence, tuple(chosen)), build)
    return _answer(request, page, key, archive)


@asynccontextmanager
async def _reading(context: AppContext) -> AsyncIterator[AsyncSession]:
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        yield session


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text) if len(text) == 10 else date.min
    except ValueError:
        raise HTTPException(404) from None


def _sections(settings: Settings, newsletter: NewsletterConfig, text: str | None) -> list[str]:
    """A reader's choice of sections, as its email's link names them; 404 for one the
    newsletter does not have."""
    if not text:
        return []
    chosen = sorted({part.strip() for part in text.split(",") if part.strip()})
    # With no sections configured anywhere, a reader's stored choice is taken as it is.
    known = set(settings.sections_of(newsletter))
    if not chosen or len(chosen) > MAX_SECTIONS or (known and not set(chosen) <= known):
        raise HTTPException(404)
    return narrowed(newsletter, chosen)


@router.get("/sitemap.xml")
async def sitemap(request: Request, archive: ArchiveDep, context: ContextDep) -> Response:
    async def build() -> Answer:
        ElementTree.register_namespace("", SITEMAP_NS)
        root = ElementTree.Element(f"{{{SITEMAP_NS}}}urlset")
        base = archive.links.base_url
        _url(root, base + "/")
        async with _reading(context) as session:
            for newsletter in archive.public():
                _url(root, base + archive.links.index_path(newsletter.id))
                editions = await store.published_editions(session, newsletter.id, limit=SITEMAP_URLS)
                for edition in editions:
                    lastmod = edition_updated(edition).date().isoformat()
                    _url(root, archive.edition_url(newsletter, edition, []), lastmod)
        body = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
        return CachedPage(body, "application/xml; charset=utf-8", _headers(private=False))

    return _answer(request, await archive.cache.get(("sitemap",), build))


def _url(root: ElementTree.Element, location: str, lastmod: str | None = None) -> None:
    url = ElementTree.SubElement(root, f"{{{SITEMAP_NS}}}url")
    ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = location
    if lastmod:
        ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = lastmod
