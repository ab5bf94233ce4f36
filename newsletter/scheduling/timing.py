"""When a newsletter's editions are due, in its own timezone (across daylight-saving changes)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from newsletter.config import NewsletterConfig


def trigger_for(newsletter: NewsletterConfig) -> CronTrigger:
    return CronTrigger.from_crontab(newsletter.schedule, timezone=ZoneInfo(newsletter.timezone))


def missed_run(newsletter: NewsletterConfig, now: datetime, grace: timedelta) -> datetime | None:
    """The latest scheduled time in (now - grace, now], if any: a run the service may have missed."""
    trigger = trigger_for(newsletter)
    fire: datetime | None = trigger.get_next_fire_time(None, now - grace)
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return latest


def edition_day(newsletter: NewsletterConfig, scheduled: datetime) -> date:
    """The edition's date: the scheduled moment's date in the newsletter's timezone."""
    return scheduled.astimezone(ZoneInfo(newsletter.timezone)).date()
