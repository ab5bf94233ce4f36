"""What operators read of engagement: per edition, clicks per article and per section, the click
rate over delivered messages, what the filter set apart and when clicks came; top articles over
a period. Only readers' clicks count (filtered ones are reported apart)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Article, Click, Delivery, Edition
from newsletter.errors import NotFound
from newsletter.rendering.content import UNSECTIONED
from newsletter.states import DeliveryStatus


@dataclass
class ArticleClicks:
    article: int
    title: str
    section: str
    clicks: int
    # Distinct readers who clicked: per-reader tracking only (None otherwise).
    readers: int | None = None


@dataclass
class EditionStats:
    edition: int
    newsletter: str
    date: str
    tracking: str
    delivered: int
    clicks: int
    # Per reader: distinct readers who clicked, over delivered; aggregate: clicks over delivered.
    click_rate: float | None
    readers_clicked: int | None
    # Per reader only, and a lower bound (some mail apps load every image).
    opened_at_least: int | None
    articles: list[ArticleClicks] = field(default_factory=list)
    sections: dict[str, int] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    # Clicks (readers' and filtered) by seconds after the message went out, bucket lower bounds.
    timing: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def edition_stats(context: AppContext, edition_id: int) -> EditionStats:
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        edition = await session.get(Edition, edition_id)
        if edition is None:
            raise NotFound(f"edition {edition_id} not found")
        newsletter = next((n for n in context.settings.newsletters if n.id == edition.newsletter_id), None)
        tracking = newsletter.tracking if newsletter is not None else "off"
        per_reader = tracking == "per_reader"
        delivered = await _count(session, select(func.count()).select_from(Delivery).where(
            Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SENT))  # fmt: skip
        articles = await _articles(session, edition_id, per_reader)
        stats = EditionStats(
            edition=edition.id,
            newsletter=edition.newsletter_id,
            date=edition.edition_date.isoformat(),
            tracking=tracking,
            delivered=delivered,
            clicks=sum(a.clicks for a in articles),
            click_rate=None,
            readers_clicked=None,
            opened_at_least=None,
            articles=articles,
            filtered=await _grouped(session, Click.filtered, edition_id, Click.filtered.is_not(None)),
            timing={
                str(k): v for k, v in (await _grouped(session, Click.after_send_seconds, edition_id)).items()
            },
        )
        for article in articles:
            stats.sections[article.section] = stats.sections.get(article.section, 0) + article.clicks
        if per_reader:
            stats.readers_clicked = await _distinct_readers(session, edition_id, "click")
            stats.opened_at_least = await _distinct_readers(session, edition_id, "open")
        shown = stats.readers_clicked if per_reader else stats.clicks
        stats.click_rate = round(shown / delivered, 4) if delivered and shown is not None else None
    return stats


async def _articles(session: AsyncSession, edition_id: int, per_reader: bool) -> list[ArticleClicks]:
    readers = func.count(distinct(Click.delivery_id)) if per_reader else func.count()
    rows = await session.execute(
        select(Click.article_id, Article.title, Article.section, func.count(), readers)
        .outerjoin(Article, Article.id == Click.article_id)
        .where(Click.edition_id == edition_id, Click.kind == "click", Click.filtered.is_(None))
        .group_by(Click.article_id, Article.title, Article.section)
        .order_by(func.count().desc(), Click.article_id)
    )
    return [
        ArticleClicks(
            article=article_id or 0,
            title=title or "(deleted article)",
            section=section or UNSECTIONED,
            clicks=clicks,
            readers=distinct_readers if per_reader else None,
        )
        for article_id, title, section, clicks, distinct_readers in rows.all()
    ]


async def _grouped(session: AsyncSession, column: Any, edition_id: int, *where: Any) -> dict[Any, int]:
    rows = await session.execute(
        select(column, func.count())
        .where(Click.edition_id == edition_id, Click.kind == "click", column.is_not(None), *where)
        .group_by(column)
        .order_by(column)
    )
    return {key: count for key, count in rows.all()}


async def _distinct_readers(session: AsyncSession, edition_id: int, kind: str) -> int:
    return await _count(
        session,
        select(func.count(distinct(Click.delivery_id))).where(
            Click.edition_id == edition_id, Click.kind == kind, Click.filtered.is_(None)
        ),
    )


async def _count(session: AsyncSession, query: Any) -> int:
    return int(await session.scalar(query) or 0)


async def top_articles(context: AppContext, *, since: datetime, limit: int = 10) -> list[ArticleClicks]:
    """Readers' clicks per article across every edition since `since`, most clicked first."""
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        # Counted per article first, the titles joined to the few kept: not to every click.
        counted = (
            select(Click.article_id, func.count().label("clicks"))
            .where(Click.at >= since, Click.kind == "click", Click.filtered.is_(None))
            .group_by(Click.article_id)
            .order_by(func.count().desc(), Click.article_id)
            .limit(limit)
            .subquery()
        )
        rows = await session.execute(
            select(counted.c.article_id, Article.title, Article.section, counted.c.clicks)
            .outerjoin(Article, Article.id == counted.c.article_id)
            .order_by(counted.c.clicks.desc(), counted.c.article_id)
        )
        return [
            ArticleClicks(article_id or 0, title or "(deleted article)", section or UNSECTIONED, clicks)
            for article_id, title, section, clicks in rows.all()
        ]
