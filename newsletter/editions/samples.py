"""London Daily's sample articles, read from the packaged sample feed: for pictures, benchmarks, and
to weigh a digest of `max_articles` stories before any is sent."""

from __future__ import annotations

from calendar import timegm
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser

from newsletter.config import Settings
from newsletter.database.models import Article
from newsletter.editions.selection import lead_first
from newsletter.rendering import DigestRenderer
from newsletter.rendering.size import clipping_warning, html_bytes
from newsletter.resources import sample_feed


def sample_articles(limit: int = 12, feed: Path | None = None) -> list[Article]:
    """The newest `limit` entries as unsaved Article rows, lead story first."""
    parsed: Any = feedparser.parse((feed or sample_feed()).read_bytes())
    articles = [_article(entry) for entry in parsed.entries]
    articles.sort(key=lambda article: article.published_at, reverse=True)
    return lead_first(articles[:limit])


def _article(entry: Any) -> Article:
    published = entry.get("published_parsed")
    media = [m for m in entry.get("media_content", []) if m.get("medium") == "image"]
    tags = entry.get("tags") or []
    return Article(
        guid=entry.get("id"),
        url=entry.get("link", ""),
        canonical_url=entry.get("link", ""),
        title=entry.get("title", ""),
        summary=entry.get("summary", ""),
        author=entry.get("author"),
        section=tags[0].get("term") if tags else None,
        image_url=media[0].get("url") if media else None,
        published_at=datetime.fromtimestamp(timegm(published), UTC) if published else datetime.now(UTC),
    )


def digest_size_warnings(settings: Settings) -> list[str]:
    """For each newsletter, a warning when a digest of `max_articles` stories (the sample
    stories, repeated as needed) rendered with the configured templates comes near the size
    Gmail clips at (see rendering.size)."""
    renderer = DigestRenderer(settings)
    stories = sample_articles(limit=1000)
    found: list[str] = []
    for index, newsletter in enumerate(settings.newsletters):
        wanted = newsletter.max_articles
        articles = (stories * (wanted // len(stories) + 1))[:wanted]
        rendered = renderer.render_digest(newsletter, date.today(), articles)
        what = f"a digest of {wanted} stories"
        if caution := clipping_warning(html_bytes(rendered.html), what=what):
            found.append(f"newsletters[{index}].max_articles: {caution}")
    return found
