"""Figures too costly to count on every request (a million deliveries by status, readers by
status): each kept for a moment and, once stale, answered as it was while a fresh one is
counted in the background, once however many ask. Only the first request ever waits for a count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from newsletter.logs import get_logger

log = get_logger(__name__)
KEPT = 256


@dataclass
class _Kept:
    value: Any
    at: float
    refreshing: asyncio.Task[None] | None = None


class Snapshots:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._kept: dict[Hashable, _Kept] = {}
        self._clock = clock

    async def get(self, key: Hashable, count: Callable[[], Awaitable[Any]], max_age: float) -> Any:
        kept = self._kept.get(key)
        if kept is None:
            value = await count()
            self._keep(key, _Kept(value, self._clock()))
            return value
        if self._clock() - kept.at > max_age and (kept.refreshing is None or kept.refreshing.done()):
            kept.refreshing = asyncio.create_task(self._refresh(kept, count))
        return kept.value

    async def _refresh(self, kept: _Kept, count: Callable[[], Awaitable[Any]]) -> None:
        try:
            kept.value, kept.at = await count(), self._clock()
        except Exception as exc:  # the last figure stays; the next request tries again
            log.warning("console.snapshot_failed", error=type(exc).__name__)

    def _keep(self, key: Hashable, kept: _Kept) -> None:
        if len(self._kept) >= KEPT:
            self._kept.pop(next(iter(self._kept)))
        self._kept[key] = kept

    def forget(self, key: Hashable) -> None:
        self._kept.pop(key, None)

    async def close(self) -> None:
        """Counts still running end (before the database they read from closes)."""
        running = [k.refreshing for k in self._kept.values() if k.refreshing and not k.refreshing.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
