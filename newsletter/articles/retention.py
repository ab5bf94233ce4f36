"""Forgetting old articles: those published before `articles.retention_days` are deleted.

Editions keep what their emails need in their rendered variants, so an old article is of no
further use once no newsletter looks back that far (the configuration refuses a retention
shorter than the longest `lookback_hours`) — unless an edition carried it and the web archive
shows that edition: articles of a variant are kept as long as some newsletter's archive is on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from newsletter.config import ArticlesConfig, Settings
from newsletter.context import AppContext
from newsletter.database.models import Article, EditionVariant, utcnow
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
    archived = await _archived_articles(context) if _archive_on(context.settings) else set()
    deleted, after = 0, 0
    while True:
        async with context.db.session() as session, session.begin():
            candidates = list(
                (
                    await session.scalars(
                        select(Article.id)
                        .where(Article.published_at < before, Article.id > after)
                        .order_by(Article.id)
                        .limit(BATCH)
                    )
                ).all()
            )
            ids = [article_id for article_id in candidates if article_id not in archived]
            if ids:
                await session.execute(delete(Article).where(Article.id.in_(ids)))
        deleted += len(ids)
        if len(candidates) < BATCH:
            break
        after = candidates[-1]
    if deleted:
        log.info("articles.deleted", count=deleted, published_before=before.isoformat())
    return deleted


def _archive_on(settings: Settings) -> bool:
    return any(newsletter.archive != "off" for newsletter in settings.newsletters)


async def _archived_articles(context: AppContext) -> set[int]:
    """Every article an edition variant carried (a dozen an edition: thousands, not millions)."""
    async with context.db.session() as session:
        lists = (await session.scalars(select(EditionVariant.article_ids))).all()
    return {int(article_id) for listed in lists for article_id in json.loads(listed)}
