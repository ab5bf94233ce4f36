"""Signups per client IP: a sliding-window limit kept in this process's memory.

Per process: with several web processes behind a balancer, each counts on its own, so a
client may get up to `limit` × processes per window.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

# Beyond this many tracked clients, the idlest are forgotten (bounds memory under a flood
# from many addresses; a forgotten client simply starts a fresh window).
MAX_TRACKED_CLIENTS = 100_000


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._max_clients = max_clients
        self._hits: dict[str, deque[float]] = {}

    def hit(self, client: str) -> int | None:
        """Count one request; None when allowed, else the whole seconds to wait (Retry-After)."""
        now = self._clock()
        hits = self._hits.pop(client, None) or deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        # Re-inserted last: the dict stays ordered from least to most recently seen.
        self._hits[client] = hits
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        self._forget_idlest()
        return None

    def _forget_idlest(self) -> None:
        while len(self._hits) > self._max_clients:
            del self._hits[next(iter(self._hits))]

    def tracked_clients(self) -> int:
        return len(self._hits)
