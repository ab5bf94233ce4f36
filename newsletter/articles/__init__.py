"""Articles: fetched from RSS/Atom feeds or files, or pushed by the API and CLI; stored once each."""

from newsletter.articles.ingest import FeedReport, ingest_feeds
from newsletter.articles.inputs import ArticleInput, ArticleRules, validate_articles
from newsletter.articles.sample import write_fresh_sample_feed
from newsletter.articles.store import UpsertCounts, upsert_articles

__all__ = [
    "ArticleInput",
    "ArticleRules",
    "FeedReport",
    "UpsertCounts",
    "ingest_feeds",
    "upsert_articles",
    "validate_articles",
    "write_fresh_sample_feed",
]
