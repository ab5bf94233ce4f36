"""Prometheus counters of ingestion, on the default registry that /metrics serves."""

from __future__ import annotations

from prometheus_client import Counter

ARTICLES_INGESTED = Counter(
    "newsletter_articles_ingested_total",
    "Articles received, by source (feed, api, cli) and outcome (new, updated, unchanged, skipped).",
    ["source", "outcome"],
)
FEED_ERRORS = Counter(
    "newsletter_feed_errors_total",
    "Feeds that could not be ingested, by kind (timeout, http, too_large, redirects, network, file, "
    "not_a_feed, too_costly, internal).",
    ["kind"],
)
FEEDS_NOT_MODIFIED = Counter(
    "newsletter_feeds_not_modified_total",
    "Feed fetches answered 304 Not Modified (or an unchanged file), which cost no parsing.",
)

SANDBOXES_STARTED = Counter(
    "newsletter_feed_sandboxes_started_total",
    "Feed-parsing sandbox processes asked for (about a second of CPU each to start): at the first "
    "feed of a poll that has something to parse, and again after a feed's fault or every 200 feeds.",
)


def count_outcomes(source: str, *, new: int, updated: int, unchanged: int, skipped: int = 0) -> None:
    for outcome, amount in (
        ("new", new),
        ("updated", updated),
        ("unchanged", unchanged),
        ("skipped", skipped),
    ):
        if amount:
            ARTICLES_INGESTED.labels(source=source, outcome=outcome).inc(amount)
