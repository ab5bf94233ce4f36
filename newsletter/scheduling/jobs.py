"""The scheduler's jobs. Each is a plain coroutine over the app context, safe to run on every node."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from newsletter.articles.retention import delete_old_articles
from newsletter.config import FeedConfig, NewsletterConfig
from newsletter.context import AppContext
from newsletter.database.models import Edition, utcnow
from newsletter.database.ratelimit import forget_windows
from newsletter.editions.builder import build_edition, open_edition
from newsletter.engagement.retention import delete_old_clicks
from newsletter.logs import get_logger
from newsletter.rendering import DigestRenderer
from newsletter.scheduling import metrics
from newsletter.scheduling.timing import edition_day, missed_run
from newsletter.states import EditionStatus
from newsletter.subscriptions.erasure import expire_pending

log = get_logger(__name__)

# An edition still 'building' this long after it was created lost its builder (crash, kill).
STALE_BUILD = timedelta(minutes=5)


async def scheduled_edition(
    context: AppContext, newsletter: NewsletterConfig, scheduled: datetime, *, trigger: str = "scheduled"
) -> int | None:
    """Create (once, whichever node gets there first) and build the edition due at `scheduled`."""
    now = utcnow()
    edition, created = await open_edition(
        context, newsletter, now=now, trigger=trigger, day=edition_day(newsletter, scheduled)
    )
    if created:
        metrics.EDITIONS_CREATED.labels(newsletter.id, trigger).inc()
    if edition.status == EditionStatus.BUILDING:
        edition = await build_edition(context, edition.id, DigestRenderer(context.settings))
    return edition.id if created else None


async def catch_up(context: AppContext, now: datetime | None = None) -> list[int]:
    """At start: make up each newsletter's last run if it was missed within the grace period.

    The edition's unique key (newsletter, date) makes this happen once, however many restarts."""
    now = now or utcnow()
    grace = timedelta(hours=context.settings.scheduler.grace_hours)
    made_up: list[int] = []
    for newsletter in context.settings.newsletters:
        missed = missed_run(newsletter, now, grace)
        if missed is None:
            continue
        created = await scheduled_edition(context, newsletter, missed, trigger="catch-up")
        if created is not None:
            log.info(
                "edition.made_up", newsletter=newsletter.id, scheduled=missed.isoformat(), edition=created
            )
            made_up.append(created)
    return made_up


async def sweep(context: AppContext) -> None:
    """Finish building editions whose builder died (expired leases are the workers' to sweep)."""
    now = utcnow()
    async with context.db.session() as session:
        stale = (
            await session.scalars(
                select(Edition.id).where(
                    Edition.status == EditionStatus.BUILDING, Edition.created_at < now - STALE_BUILD
                )
            )
        ).all()
    for edition_id in stale:
        log.warning("edition.rebuilding", edition=edition_id)
        await build_edition(context, edition_id, DigestRenderer(context.settings))


async def cleanup_pending(context: AppContext) -> int:
    """Forget signups never confirmed within `subscriptions.pending_expiry_days`, and rate-limit
    counts no limit looks at any more."""
    async with context.db.session() as session:
        expired = await expire_pending(session, settings=context.settings)
        await forget_windows(await session.connection(), before=utcnow())
        await session.commit()
    if expired:
        log.info("signups.expired", subscribers=expired)
    return expired


async def cleanup_articles(context: AppContext) -> int:
    """Delete articles older than `articles.retention_days`, and clicks older than
    `tracking.retention_days`."""
    await delete_old_clicks(context)
    return await delete_old_articles(context)


async def poll_feed(context: AppContext, feed: FeedConfig) -> None:
    from newsletter.articles.ingest import ingest_feeds

    for report in await ingest_feeds(context, [feed]):
        if report.error:
            log.warning("feed.failed", feed=report.feed, error=report.error)
