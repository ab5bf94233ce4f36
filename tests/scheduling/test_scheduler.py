"""The APScheduler wiring: which jobs exist, when they fire, and that the scheduler stops cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from newsletter.config import Settings
from newsletter.context import open_context
from newsletter.database.models import utcnow
from newsletter.scheduling.scheduler import build_scheduler, run_scheduler
from newsletter.scheduling.timing import next_run
from tests.conftest import SettingsFactory


async def test_jobs_for_each_newsletter_and_feed(make_settings: SettingsFactory, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text("<rss version='2.0'><channel><title>t</title></channel></rss>")
    settings: Settings = make_settings(
        newsletters=[
            {"id": "daily", "name": "Daily", "schedule": "0 7 * * *", "timezone": "Europe/London"},
            {"id": "tokyo", "name": "Tokyo", "schedule": "30 6 * * 1-5", "timezone": "Asia/Tokyo"},
        ],
        feeds=[{"url": str(feed), "poll_minutes": 10}],
    )
    async with open_context(settings) as context:
        scheduler = build_scheduler(context)
        scheduler.start(paused=True)
        try:
            jobs = {job.id: job for job in scheduler.get_jobs()}
            assert set(jobs) == {
                "edition:daily", "edition:tokyo", "feed:0", "sweep", "cleanup", "articles-retention",
            }  # fmt: skip
            now = utcnow()
            for newsletter in settings.newsletters:
                fire = jobs[f"edition:{newsletter.id}"].trigger.get_next_fire_time(None, now)
                assert fire == next_run(newsletter, now)
            assert jobs["feed:0"].trigger.interval.total_seconds() == 600
        finally:
            scheduler.shutdown(wait=False)


async def test_the_scheduler_part_stops_when_told(make_settings: SettingsFactory) -> None:
    settings = make_settings(scheduler={"grace_hours": 0})
    async with open_context(settings) as context:
        stopping = asyncio.Event()
        running = asyncio.create_task(run_scheduler(context, stopping))
        await asyncio.sleep(0)
        stopping.set()
        await asyncio.wait_for(running, 10)
    assert running.done() and running.exception() is None
