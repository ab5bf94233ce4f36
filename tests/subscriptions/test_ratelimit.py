"""The signup rate limit: a sliding window per client, with the wait to announce."""

from __future__ import annotations

from newsletter.subscriptions.ratelimit import SlidingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(3, 60, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert limiter.hit("a") == 40
    assert limiter.hit("b") is None
    clock.now += 40
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    assert limiter.hit("a") == 60


def test_refused_requests_do_not_extend_the_wait() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(1, 60, clock=clock)
    limiter.hit("a")
    for _ in range(100):
        clock.now += 0.5
        limiter.hit("a")
    clock.now = 1060.0
    assert limiter.hit("a") is None


def test_memory_is_bounded_by_forgetting_the_idlest_clients() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(1, 60, clock=clock, max_clients=100)
    limiter.hit("busy")
    for i in range(1000):
        limiter.hit(f"client-{i}")
        if i % 10 == 0:
            assert limiter.hit("busy") is not None
    assert limiter.tracked_clients() == 100
