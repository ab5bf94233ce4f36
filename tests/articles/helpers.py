"""Reading back what an ingest stored."""

from __future__ import annotations

from sqlalchemy import select

from newsletter.context import AppContext
from newsletter.database.models import Article, FeedState


async def stored_articles(context: AppContext) -> list[Article]:
    async with context.db.session() as session:
        return list(await session.scalars(select(Article).order_by(Article.id)))


async def feed_state(context: AppContext, feed_url: str) -> FeedState | None:
    async with context.db.session() as session:
        return await session.get(FeedState, feed_url)
