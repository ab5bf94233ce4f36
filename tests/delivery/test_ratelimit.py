"""The SMTP rate limit: a token bucket shared by a relay's connections."""

from __future__ import annotations

import asyncio
import time

from newsletter.delivery.ratelimit import RateLimiter


async def test_no_limit_never_waits() -> None:
    limiter = RateLimiter(0)
    assert limiter.unlimited
    started = time.monotonic()
    for _ in range(10_000):
        await limiter.acquire()
    assert time.monotonic() - started < 5  # no sleeping at all (10,000 awaits)


async def test_a_burst_then_the_rate() -> None:
    """At 50 a second the bucket holds 5: five at once, then one every 20 ms. Counted as tokens
    taken, not timed: the clock is read to know how many a given wait allows."""
    limiter = RateLimiter(50)
    started = time.monotonic()
    for _ in range(15):
        await limiter.acquire()
    elapsed = time.monotonic() - started
    # Ten beyond the burst need at least 10 × 20 ms of refill.
    assert elapsed >= 0.2 - 0.02


async def test_connections_share_one_bucket() -> None:
    limiter = RateLimiter(100, burst=1)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(21)))
    assert time.monotonic() - started >= 0.2 - 0.02
