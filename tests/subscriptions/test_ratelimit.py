"""The signup rate limit, counted in the database: a sliding window per client, the wait to
announce, and one count for every process and machine on the same database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from newsletter.context import AppContext
from newsletter.database.models import RateLimitWindow
from newsletter.database.ratelimit import SharedRateLimiter, forget_windows
from tests.conftest import SECRET_KEY, SettingsFactory
from tests.support.live import live_server


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # the start of a window

    def __call__(self) -> float:
        return self.now


async def hit(context: AppContext, limiter: SharedRateLimiter, client: str) -> int | None:
    async with context.db.engine.begin() as conn:
        return await limiter.hit(conn, client)


async def test_the_window_slides(context: AppContext) -> None:
    clock = Clock()
    limiter = SharedRateLimiter("signup", 3, key=SECRET_KEY, clock=clock)
    assert [await hit(context, limiter, "a") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert await hit(context, limiter, "a") == 40  # full until this window ends
    assert await hit(context, limiter, "b") is None
    clock.now += 50  # ten seconds into the next window: 3 × 50/60 = 2.5 carried
    assert await hit(context, limiter, "a") == 10  # room again once 2 are carried, at 20 s
    clock.now += 10
    assert await hit(context, limiter, "a") is None
    assert await hit(context, limiter, "a") is not None


async def test_refused_requests_do_not_extend_the_wait(context: AppContext) -> None:
    clock = Clock()
    limiter = SharedRateLimiter("signup", 1, key=SECRET_KEY, clock=clock)
    assert await hit(context, limiter, "a") is None
    for _ in range(100):
        clock.now += 0.5
        assert await hit(context, limiter, "a") is not None
    clock.now += 120 - 50  # two windows on: nothing carried
    assert await hit(context, limiter, "a") is None


async def test_clients_are_stored_as_keyed_hashes_and_forgotten(context: AppContext) -> None:
    clock = Clock()
    limiter = SharedRateLimiter("signup", 5, key=SECRET_KEY, clock=clock)
    await hit(context, limiter, "203.0.113.7")
    async with context.db.engine.begin() as conn:
        buckets = (await conn.scalars(select(RateLimitWindow.bucket))).all()
        assert buckets == [limiter.bucket("203.0.113.7")] and "203.0.113" not in buckets[0]
        later = datetime.fromtimestamp(clock.now + 180, UTC)
        assert await forget_windows(conn, before=later) == 1
        assert await conn.scalar(select(func.count()).select_from(RateLimitWindow)) == 0


async def test_racing_requests_never_pass_the_limit(context: AppContext) -> None:
    limiter = SharedRateLimiter("signup", 7, key=SECRET_KEY, clock=Clock())
    results = await asyncio.gather(*(hit(context, limiter, "crowd") for _ in range(40)))
    assert results.count(None) == 7


def test_two_serve_processes_share_one_limit(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    """Two web processes on one database (PostgreSQL: as on two machines) admit the limit once
    between them, not once each."""
    limit = 4
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    extra = {"NEWSLETTER_SUBSCRIPTIONS__RATE_LIMIT_PER_MINUTE": str(limit)}
    with (
        live_server(first_dir, database_url, **extra) as one,
        live_server(second_dir, database_url, **extra) as two,
    ):
        answers = []
        for n in range(limit * 3):
            server = (one, two)[n % 2]
            answers.append(
                httpx.post(f"{server.base_url}/subscribe", json={"email": f"r{n}@example.com"}).status_code
            )
    # A window boundary may fall within the test: what the first window admits plus what the
    # second carries over never exceeds the limit twice.
    assert answers.count(202) in range(limit, 2 * limit), answers
    assert set(answers) == {202, 429}
    assert answers[:limit] == [202] * limit
