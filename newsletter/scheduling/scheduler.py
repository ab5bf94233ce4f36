"""APScheduler 3 wiring: a cron job per newsletter in its timezone, a poll job per feed, the
sweeper, the clean-up of never-confirmed signups and of articles past their retention."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.context import AppContext
from newsletter.database.models import utcnow
from newsletter.logs import get_logger
from newsletter.scheduling import jobs, metrics
from newsletter.scheduling.timing import trigger_for

log = get_logger(__name__)


def _guarded(name: str, job: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[None]]:
    async def run(*args: object) -> None:
        try:
            await job(*args)
        except Exception:
            metrics.JOBS.labels(name, "error").inc()
            log.exception("job.failed", job=name)
        else:
            metrics.JOBS.labels(name, "ok").inc()

    return run


def build_scheduler(context: AppContext) -> AsyncIOScheduler:
    settings = context.settings
    grace = int(settings.scheduler.grace_hours * 3600) or 1
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for newsletter in settings.newsletters:
        scheduler.add_job(
            _guarded("edition", _edition_job),
            trigger_for(newsletter),
            args=[context, newsletter.id],
            id=f"edition:{newsletter.id}",
            misfire_grace_time=grace,
        )
    for index, feed in enumerate(settings.feeds):
        scheduler.add_job(
            _guarded("feed", jobs.poll_feed),
            IntervalTrigger(minutes=feed.poll_minutes),
            args=[context, feed],
            id=f"feed:{index}",
            next_run_time=None,
        )
    scheduler.add_job(
        _guarded("sweep", jobs.sweep),
        IntervalTrigger(seconds=settings.scheduler.sweep_seconds),
        args=[context],
        id="sweep",
    )
    scheduler.add_job(
        _guarded("cleanup", jobs.cleanup_pending),
        IntervalTrigger(hours=1),
        args=[context],
        id="cleanup",
    )
    scheduler.add_job(
        _guarded("articles", jobs.cleanup_articles),
        IntervalTrigger(hours=6),
        args=[context],
        id="articles-retention",
    )
    return scheduler


async def _edition_job(context: AppContext, newsletter_id: str) -> None:
    newsletter = context.settings.newsletter(newsletter_id)
    await jobs.scheduled_edition(context, newsletter, utcnow())


async def run_scheduler(context: AppContext, stopping: asyncio.Event) -> None:
    """The scheduler part of the service: make up a missed run, then fire jobs until stopped."""
    await _guarded("catch-up", jobs.catch_up)(context)
    scheduler = build_scheduler(context)
    scheduler.start()
    # Feeds are polled once at start, then on their interval.
    for job in scheduler.get_jobs():
        if job.id.startswith("feed:"):
            job.modify(next_run_time=_soon())
    log.info("scheduler.started", jobs=len(scheduler.get_jobs()))
    try:
        await stopping.wait()
    finally:
        scheduler.shutdown(wait=False)
        log.info("scheduler.stopped")


def _soon() -> datetime:
    return utcnow() + timedelta(seconds=1)
