"""What the console's articles page reads and changes: the latest articles (by words of the
title and by section), an article added by hand, and hiding and pinning one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.articles.clean import canonical_url
from newsletter.articles.inputs import ArticleRules, validate_articles
from newsletter.articles.store import upsert_articles
from newsletter.config import NewsletterConfig, Settings
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Article, Edition, EditionVariant, utcnow
from newsletter.editions.selection import effective_sections
from newsletter.errors import InvalidInput, NotFound
from newsletter.states import EditionStatus

PAGE = 50
MAX_WORDS = 8


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the next one starts below this (published_at, id)."""

    published_at: datetime
    id: int


@dataclass(frozen=True)
class Row:
    id: int
    title: str
    link: str  # "" unless the stored URL is http(s)
    section: str | None
    published_at: datetime
    feed: str  # the feed's name, else its URL; "" for an article pushed or added by hand
    hidden: bool
    pinned: bool
    pin_notes: list[str] = field(default_factory=list)  # what each newsletter did with the pin


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    older: Cursor | None


@dataclass(frozen=True)
class Draft:
    """The add form as posted: shown again, as it was, after an error."""

    title: str = ""
    url: str = ""
    summary: str = ""
    section: str = ""
    published_at: str = ""


def title_words(q: str) -> list[str]:
    return q.split()[:MAX_WORDS]


def _listing(words: list[str], section: str, before: Cursor | None) -> Select[Article]:
    query = select(Article).order_by(Article.published_at.desc(), Article.id.desc()).limit(PAGE + 1)
    for word in words:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # PostgreSQL answers this from the trigram index; SQLite reads every title.
        query = query.where(Article.title.ilike(f"%{escaped}%", escape="\\"))
    if section:
        query = query.where(Article.section == section)
    if before is not None:
        query = query.where(
            Article.published_at <= before.published_at,
            or_(
                Article.published_at < before.published_at,
                and_(Article.published_at == before.published_at, Article.id < before.id),
            ),
        )
    return query


async def page(context: AppContext, *, q: str = "", section: str = "", before: Cursor | None = None) -> Page:
    """The latest articles, newest first, PAGE at a time below `before` (keyset pagination)."""
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        found = list((await session.scalars(_listing(title_words(q), section, before))).all())
        shown = found[:PAGE]
        now = utcnow()
        rows = [await _row(session, context.settings, article, now) for article in shown]
    last = shown[-1] if len(found) > PAGE else None
    return Page(rows, Cursor(last.published_at, last.id) if last else None)


async def _row(session: AsyncSession, settings: Settings, article: Article, now: datetime) -> Row:
    notes = await pin_notes(session, settings, article, now) if article.pinned_at else []
    link = article.url if article.url.lower().startswith(("http://", "https://")) else ""
    return Row(
        article.id,
        article.title,
        link,
        article.section,
        article.published_at,
        _feed_name(settings, article.feed_url),
        article.hidden_at is not None,
        article.pinned_at is not None,
        notes,
    )


def _feed_name(settings: Settings, feed_url: str | None) -> str:
    if not feed_url:
        return ""
    return next((f.name for f in settings.feeds if f.url == feed_url and f.name), feed_url)


async def pin_notes(session: AsyncSession, settings: Settings, article: Article, now: datetime) -> list[str]:
    """What became of the pin in each newsletter whose sections hold the article."""
    if article.hidden_at is not None:
        return ["no effect while hidden"]
    notes = []
    for newsletter in settings.newsletters:
        wanted = effective_sections(newsletter, ())
        if not wanted or article.section in wanted:
            notes.append(f"{newsletter.name}: {await _pin_fate(session, newsletter, article, now)}")
    return notes or ["in no newsletter's sections"]


async def _pin_fate(
    session: AsyncSession, newsletter: NewsletterConfig, article: Article, now: datetime
) -> str:
    """A pin counts for the first edition cut off after it (editions.selection.pinned_lead)."""
    assert article.pinned_at is not None
    edition = await session.scalar(
        select(Edition)
        .where(Edition.newsletter_id == newsletter.id, Edition.cutoff_at >= article.pinned_at)
        .order_by(Edition.cutoff_at, Edition.id)
        .limit(1)
    )
    if edition is None:
        if article.pinned_at <= now - timedelta(hours=newsletter.lookback_hours):
            return f"expired: no edition within {newsletter.lookback_hours} hours of the pin"
        return "leads the next edition"
    if edition.status == EditionStatus.BUILDING:
        return f"edition #{edition.id} is being built"
    first = f"[{article.id}"
    led = await session.scalar(
        select(
            exists().where(
                EditionVariant.edition_id == edition.id,
                or_(EditionVariant.article_ids == f"{first}]", EditionVariant.article_ids.like(f"{first},%")),
            )
        )
    )
    return f"{'led' if led else 'did not lead'} edition #{edition.id}; pin used"


async def add(context: AppContext, draft: Draft) -> tuple[int, str]:
    """A new article from the add form, checked as the API checks one: (its id, its title).
    InvalidInput names the field at fault; nothing is stored then."""
    settings = context.settings
    sections = settings.known_sections()
    if sections and draft.section not in sections:
        raise InvalidInput("section", "choose one of the sections listed")
    body = {
        "title": draft.title,
        "url": draft.url,
        "summary": draft.summary,
        "section": draft.section or None,
        "published_at": draft.published_at or None,
    }
    # Sanitising a long summary is CPU work: kept off the event loop, as the API does.
    (item,) = await asyncio.to_thread(validate_articles, body, ArticleRules.from_settings(settings))
    async with context.db.session() as session, session.begin():
        # An existing URL would update that article (the API's de-duplication): refused here.
        known = await session.scalar(
            select(Article.id).where(Article.canonical_url == canonical_url(item.url))
        )
        if known is not None:
            raise InvalidInput("url", f"article #{known} already has this URL")
        counts = await upsert_articles(session, [item], now=utcnow())
    return counts.ids[0], item.title


async def set_hidden(context: AppContext, article_id: int, hidden: bool) -> str:
    """Hide (left out of every edition selected from now on) or show again; the title."""
    async with context.db.session() as session:
        article = await _article(session, article_id)
        if not hidden:
            article.hidden_at = None
        elif article.hidden_at is None:
            article.hidden_at = utcnow()
        await session.commit()
        return article.title


async def set_pinned(context: AppContext, article_id: int, pinned: bool) -> str:
    """Pin (the lead of each newsletter's next edition; pinning again renews it) or unpin; the title."""
    async with context.db.session() as session:
        article = await _article(session, article_id)
        article.pinned_at = utcnow() if pinned else None
        await session.commit()
        return article.title


async def _article(session: AsyncSession, article_id: int) -> Article:
    article = await session.get(Article, article_id)
    if article is None:
        raise NotFound(f"article {article_id}")
    return article
