"""The APScheduler wiring: which jobs exist, when they fire, and that the scheduler stops cleanly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from newsletter.config import Settings
from newsletter.context import open_context
from newsletter.scheduling.scheduler import build_scheduler, run_scheduler
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
            # Monday 6 July 2026, noon UTC: London's next 07:00 is Tuesday's (06:00 UTC in summer);
            # Tokyo's next weekday 06:30 is Tuesday's too (Monday 21:30 UTC).
            monday = datetime(2026, 7, 6, 12, 0, tzinfo=UTC)
            expected = {
                "daily": datetime(2026, 7, 7, 6, 0, tzinfo=UTC),
                "tokyo": datetime(2026, 7, 6, 21, 30, tzinfo=UTC),
            }
            for newsletter_id, when in expected.items():
                fire = jobs[f"edition:{newsletter_id}"].trigger.get_next_fire_time(None, monday)
                assert fire is not None and fire.astimezone(UTC) == when
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
