"""Reading articles back for the CLI and the admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import Article


async def list_articles(
    session: AsyncSession, *, since: datetime | None = None, section: str | None = None, limit: int = 50
) -> list[Article]:
    """Newest first; `section` matches in any case."""
    query = select(Article).order_by(Article.published_at.desc(), Article.id.desc()).limit(limit)
    if since is not None:
        query = query.where(Article.published_at >= since)
    if section:
        query = query.where(func.lower(Article.section) == section.strip().lower())
    return list(await session.scalars(query))


def article_json(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "summary": article.summary,
        "author": article.author,
        "section": article.section,
        "image_url": article.image_url,
        "published_at": article.published_at.isoformat(),
        "guid": article.guid,
        "feed_url": article.feed_url,
        "created_at": article.created_at.isoformat(),
        "updated_at": article.updated_at.isoformat(),
    }
