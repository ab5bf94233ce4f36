"""Real publishers' feeds from ../shared/feeds (when present), served over HTTP and ingested."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from newsletter.articles import ingest_feeds
from newsletter.articles.clean import text_of
from newsletter.config import FeedConfig
from tests.articles.conftest import ContextFactory
from tests.articles.helpers import stored_articles
from tests.support.http import FeedServer, Route

FEEDS = Path(__file__).resolve().parents[3] / "shared" / "feeds"
CONTENT_TYPES = {
    "guardian.rss": "application/rss+xml; charset=utf-8",
    "heise.atom": "application/atom+xml",
    "uolNoticias.rss": "text/xml; charset=ISO-8859-1",
    "reddit-atom.rss": "application/atom+xml; charset=UTF-8",
}
REAL_FEEDS = (
    sorted(path.name for path in FEEDS.glob("*") if path.suffix in (".rss", ".atom"))
    if FEEDS.is_dir()
    else []
)


@pytest.mark.skipif(not REAL_FEEDS, reason=f"{FEEDS} is not here")
@pytest.mark.parametrize("name", REAL_FEEDS)
async def test_real_feed_ingests(name: str, make_context: ContextFactory, feed_server: FeedServer) -> None:
    context = await make_context()
    body = (FEEDS / name).read_bytes()
    url = feed_server.route(f"/{name}", Route(body=body, content_type=CONTENT_TYPES.get(name, "text/xml")))
    [report] = await ingest_feeds(context, [FeedConfig(url=url, name=name, allow_private=True)])
    assert report.error is None, report.error
    articles = await stored_articles(context)
    assert report.new == len(articles) >= 1
    for article in articles:
        assert 0 < len(article.title) <= 200 and "<" not in article.title.replace("< ", "")
        parts = urlsplit(article.url)
        assert parts.scheme in ("http", "https") and parts.hostname and parts.hostname != "127.0.0.1"
        assert article.published_at.utcoffset() == timedelta(0)
        assert len(text_of(article.summary)) <= 600
        assert "<script" not in article.summary and "<img" not in article.summary
        if article.image_url:
            assert urlsplit(article.image_url).scheme in ("http", "https")
    [again] = await ingest_feeds(context, [FeedConfig(url=url, name=name, allow_private=True)])
    assert (again.new, again.updated) == (0, 0)
