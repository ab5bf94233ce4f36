"""The ingest service: fetch, parse and store each feed; one feed's failure never stops the others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from newsletter.articles.entries import FeedSource
from newsletter.articles.feedstate import load_feed_state, record_check, record_success
from newsletter.articles.fetch import FetchError, display_url, fetch_remote, http_client, read_local
from newsletter.articles.inputs import ArticleRules
from newsletter.articles.metrics import FEED_ERRORS, FEEDS_NOT_MODIFIED, count_outcomes
from newsletter.articles.parse import NotAFeed
from newsletter.articles.parsers import FeedParsers, shared_parsers
from newsletter.articles.sandbox import ParseLimitExceeded, ReadJob
from newsletter.articles.store import upsert_articles
from newsletter.config import FeedConfig
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import utcnow
from newsletter.logs import get_logger

log = get_logger(__name__)

# Feeds fetched at once; their writes are short transactions, one per feed.
FEED_CONCURRENCY = 4


@dataclass
class FeedReport:
    feed: str  # the feed's URL (any password masked) or file path
    name: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason → entries
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    not_modified: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skipped_total": self.skipped_total}


async def ingest_feeds(
    context: AppContext,
    feeds: Sequence[FeedConfig] | None = None,
    *,
    treat_as_public: Collection[tuple[str, int]] = (),
    parsers: FeedParsers | None = None,
) -> list[FeedReport]:
    """Ingest `feeds` (None: every configured feed) concurrently; a report per feed, in order.
    `treat_as_public`: addresses fetched from as if public (see fetch.GuardedNetwork).
    `parsers`: the sandboxes that parse the feeds; None: this process's (shared_parsers)."""
    chosen = list(context.settings.feeds if feeds is None else feeds)
    if not chosen:
        return []
    if parsers is None:
        parsers = shared_parsers()
    rules = ArticleRules.from_settings(context.settings)
    limiter = asyncio.Semaphore(FEED_CONCURRENCY)
    config = context.settings.ingest
    async with (
        http_client(config, treat_as_public=treat_as_public) as public,
        http_client(config, allow_private=True) as private,
    ):

        async def one(feed: FeedConfig) -> FeedReport:
            async with limiter:
                client = private if feed.allow_private else public
                return await _ingest_guarded(context, client, parsers, feed, rules)

        return list(await asyncio.gather(*(one(feed) for feed in chosen)))


async def _ingest_guarded(
    context: AppContext,
    client: httpx.AsyncClient,
    parsers: FeedParsers,
    feed: FeedConfig,
    rules: ArticleRules,
) -> FeedReport:
    shown = display_url(feed.url)
    report = FeedReport(feed=shown, name=feed.name or shown)
    started = time.monotonic()
    try:
        await _ingest(context, client, parsers, feed, rules, report)
    except (FetchError, NotAFeed, ParseLimitExceeded) as exc:
        await _record_failure(context, feed, report, str(exc), _kind(exc), exc)
    except Exception as exc:  # a fault in one feed (its data, the database) must not stop the others
        log.exception("feed.internal_error", feed=shown)
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        await _record_failure(
            context, feed, report, f"internal error: {type(exc).__name__}: {detail}", "internal"
        )
    seconds = round(time.monotonic() - started, 3)
    if report.failed:
        log.warning("feed.failed", feed=shown, error=report.error, seconds=seconds)
    else:
        log.info(
            "feed.ingested",
            feed=shown,
            new=report.new,
            updated=report.updated,
            unchanged=report.unchanged,
            skipped=report.skipped_total,
            not_modified=report.not_modified,
            seconds=seconds,
        )
    return report


async def _ingest(
    context: AppContext,
    client: httpx.AsyncClient,
    parsers: FeedParsers,
    feed: FeedConfig,
    rules: ArticleRules,
    report: FeedReport,
) -> None:
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        state = await load_feed_state(session, feed.url)
    etag, last_modified = (state.etag, state.last_modified) if state is not None else (None, None)
    config = context.settings.ingest
    if feed.is_remote:
        fetched = await fetch_remote(client, feed.url, etag=etag, last_modified=last_modified, config=config)
    else:
        fetched = await read_local(feed.url, previous_etag=etag, max_bytes=config.max_bytes)
    now = utcnow()
    if fetched.not_modified:
        report.not_modified = True
        FEEDS_NOT_MODIFIED.inc()
        async with context.db.session() as session, session.begin():
            await record_check(session, feed.url, checked_at=now, status=fetched.status, error=None)
        return
    assert fetched.body is not None
    parsers.warm()  # here, not earlier: a poll where every feed answers 304 starts no sandbox
    source = FeedSource(feed_url=report.feed, base=fetched.location, default_section=feed.section)
    job = ReadJob(fetched.body, fetched.content_type, fetched.location, source, rules, now)
    batch, warning = await parsers.read(job)
    if warning:
        report.warnings.append(f"{report.name}: {warning}")
        log.warning("feed.malformed", feed=report.feed, warning=warning)
    async with context.db.session() as session, session.begin():
        counts = await upsert_articles(session, batch.articles, now=now)
        await record_success(
            session,
            feed.url,
            checked_at=now,
            status=fetched.status,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )
    report.new, report.updated, report.unchanged = counts.new, counts.updated, counts.unchanged
    report.skipped = dict(sorted(batch.skipped.items()))
    count_outcomes(
        "feed",
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        skipped=report.skipped_total,
    )


def _kind(exc: Exception) -> str:
    if isinstance(exc, FetchError):
        return exc.kind
    return "not_a_feed" if isinstance(exc, NotAFeed) else "too_costly"


async def _record_failure(
    context: AppContext,
    feed: FeedConfig,
    report: FeedReport,
    error: str,
    kind: str,
    exc: BaseException | None = None,
) -> None:
    report.error = error
    FEED_ERRORS.labels(kind=kind).inc()
    status = exc.status if isinstance(exc, FetchError) else None
    try:
        async with context.db.session() as session, session.begin():
            await record_check(session, feed.url, checked_at=utcnow(), status=status, error=error)
    except Exception:  # the database may be the fault; the report still says what happened
        log.exception("feed.state_not_recorded", feed=report.feed)
