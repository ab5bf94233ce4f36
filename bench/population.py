"""Articles and readers for a scratch database, written by the database itself: a million readers
come from one INSERT … SELECT over a generated series, not from Python rows."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import Integer, String, cast, func, insert, literal, select, update
from sqlalchemy.sql.selectable import NamedFromClause

from newsletter.config import Settings
from newsletter.context import AppContext, open_context
from newsletter.database.models import Article, Subscriber, Subscription, UTCDateTime, utcnow
from newsletter.editions.samples import sample_articles

READER_DOMAIN = "readers.example"


async def add_sample_articles(context: AppContext, count: int = 10) -> int:
    """London Daily's sample articles, published over the last hours (inside the lookback window)."""
    now = utcnow()
    articles = sample_articles(limit=count)
    for n, article in enumerate(articles):
        article.published_at = now - timedelta(minutes=20 + 9 * n)
        article.feed_url = "bench"
        article.content_hash = hashlib.sha256(article.canonical_url.encode()).hexdigest()
        article.created_at = article.updated_at = now
    async with context.db.session() as session:
        session.add_all(articles)
        await session.commit()
    return len(articles)


async def republish_articles(context: AppContext) -> None:
    """Move every article to just now, in the same order, so that the next edition (which takes
    what was published after the previous one's cut-off) carries them all again."""
    now = utcnow()
    async with context.db.session() as session:
        ids = (await session.scalars(select(Article.id).order_by(Article.published_at.desc()))).all()
        for n, article_id in enumerate(ids):
            moment = now - timedelta(milliseconds=10 * (n + 1))
            await session.execute(update(Article).where(Article.id == article_id).values(published_at=moment))
        await session.commit()


def _series(dialect: str, first: int, last: int) -> NamedFromClause:
    """Rows n = first..last: generate_series on PostgreSQL, a recursive CTE on SQLite."""
    if dialect == "postgresql":
        return func.generate_series(first, last).table_valued("n").render_derived(name="series")
    seed = select(literal(first, Integer).label("n")).cte("series", recursive=True)
    return seed.union_all(select(seed.c.n + 1).where(seed.c.n < last))


# One link nonce for every bench reader: links are signed, never followed, in the benchmarks.
BENCH_NONCE = "0" * 12


async def add_readers(context: AppContext, count: int, *, newsletter: str = "daily") -> int:
    """`count` more active readers of `newsletter` (all sections); returns how many there are now."""
    now = utcnow()
    async with context.db.session() as session:
        before = int(await session.scalar(select(func.coalesce(func.max(Subscriber.id), 0))) or 0)
        first = before + 1
        series = _series(context.db.dialect, first, first + count - 1)
        n = series.c.n
        address = literal("reader") + cast(n, String) + literal(f"@{READER_DOMAIN}")
        stamp = literal(now, UTCDateTime())
        await session.execute(
            insert(Subscriber).from_select(
                ["email", "email_key", "status", "source", "hard_bounces"]
                + ["created_at", "updated_at", "confirmed_at", "token_nonce", "legacy_links"],
                select(address, address, literal("active"), literal("bench"), literal(0))
                .add_columns(stamp, stamp, stamp, literal(BENCH_NONCE), literal(False))
                .select_from(series),
            )
        )
        await session.execute(
            insert(Subscription).from_select(
                ["subscriber_id", "newsletter_id", "sections", "created_at", "updated_at"],
                select(Subscriber.id, literal(newsletter), literal("[]"), stamp, stamp).where(
                    Subscriber.id > before
                ),
            )
        )
        await session.commit()
        total = await session.scalar(select(func.count()).select_from(Subscriber))
    if context.db.dialect == "postgresql":
        await _analyze(context)
    return int(total or 0)


async def _analyze(context: AppContext) -> None:
    """Fresh planner statistics, as autovacuum would give a long-lived database."""
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("subscribers", "subscriptions"):
            await conn.exec_driver_sql(f"ANALYZE {table}")


@asynccontextmanager
async def populated(settings: Settings, readers: int) -> AsyncIterator[AppContext]:
    """The database migrated, with the sample articles and `readers` active readers."""
    async with open_context(settings) as context:
        await add_sample_articles(context)
        if readers:
            await add_readers(context, readers)
        yield context
