"""Schedules in the newsletter's timezone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from newsletter.config import NewsletterConfig
from newsletter.scheduling.timing import edition_day, missed_run, trigger_for


def next_run(newsletter: NewsletterConfig, after: datetime) -> datetime | None:
    fire: datetime | None = trigger_for(newsletter).get_next_fire_time(None, after)
    return fire


LONDON = NewsletterConfig(id="daily", name="Daily", schedule="0 7 * * *", timezone="Europe/London")


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (datetime(2026, 1, 10, 12, 0, tzinfo=UTC), datetime(2026, 1, 11, 7, 0, tzinfo=UTC)),  # GMT
        (datetime(2026, 7, 10, 12, 0, tzinfo=UTC), datetime(2026, 7, 11, 6, 0, tzinfo=UTC)),  # BST
        # Clocks go forward on Sunday 29 March 2026 at 01:00 UTC: 07:00 local is 06:00 UTC that day.
        (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
        # ...and back on Sunday 25 October 2026: 07:00 local is 07:00 UTC again.
        (datetime(2026, 10, 24, 12, 0, tzinfo=UTC), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
    ],
)
def test_seven_in_the_morning_local_all_year(after: datetime, expected: datetime) -> None:
    fire = next_run(LONDON, after)
    assert fire is not None
    assert fire.astimezone(UTC) == expected
    assert (fire.hour, fire.minute) == (7, 0)


def test_a_run_missed_within_the_grace_period() -> None:
    now = datetime(2026, 7, 11, 8, 30, tzinfo=UTC)  # 09:30 BST
    missed = missed_run(LONDON, now, timedelta(hours=6))
    assert missed is not None and missed.astimezone(UTC) == datetime(2026, 7, 11, 6, 0, tzinfo=UTC)
    assert missed_run(LONDON, now, timedelta(hours=2)) is None


def test_edition_day_is_the_local_date() -> None:
    tokyo = NewsletterConfig(id="t", name="T", schedule="30 6 * * *", timezone="Asia/Tokyo")
    fire = next_run(tokyo, datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2026, 5, 1, 21, 30, tzinfo=UTC)
    assert edition_day(tokyo, fire) == date(2026, 5, 2)
