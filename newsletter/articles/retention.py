"""Forgetting old articles: those published before `articles.retention_days` are deleted.

Editions keep what they need in their rendered variants, so an old article is of no further use
once no newsletter looks back that far (the configuration refuses a retention shorter than the
longest `lookback_hours`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from newsletter.config import ArticlesConfig
from newsletter.context import AppContext
from newsletter.database.models import Article, utcnow
from newsletter.logs import get_logger

log = get_logger(__name__)

# Rows deleted per transaction: short transactions, so signups and claims are not held up.
BATCH = 1000


def cutoff(config: ArticlesConfig, now: datetime) -> datetime | None:
    """Articles published before this go; None when they are kept for ever."""
    return now - timedelta(days=config.retention_days) if config.retention_days else None


async def delete_old_articles(context: AppContext, *, now: datetime | None = None) -> int:
    """Delete articles past their retention, a batch per transaction; returns how many."""
    before = cutoff(context.settings.articles, now or utcnow())
    if before is None:
        return 0
    deleted = 0
    while True:
        async with context.db.session() as session, session.begin():
            ids = list(
                (
                    await session.scalars(
                        select(Article.id).where(Article.published_at < before).limit(BATCH)
                    )
                ).all()
            )
            if ids:
                await session.execute(delete(Article).where(Article.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < BATCH:
            break
    if deleted:
        log.info("articles.deleted", count=deleted, published_before=before.isoformat())
    return deleted
