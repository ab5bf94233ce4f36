"""The claimer: keeps the relays' queues fed from the ledger, and notices editions drained."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.database.models import utcnow
from newsletter.delivery import metrics
from newsletter.delivery.recheck import Recheck
from newsletter.delivery.relays import RelayPool
from newsletter.delivery.work import WorkItem
from newsletter.delivery.workstore import Store
from newsletter.logs import get_logger
from newsletter.states import EditionStatus

log = get_logger(__name__)


class Editions(Protocol):
    """What the worker asks of the editions it delivers; their lifecycle is editions/'."""

    async def sending(self) -> list[tuple[int, str]]: ...
    async def statuses(self, edition_ids: Sequence[int]) -> dict[int, EditionStatus]: ...
    async def finish_if_drained(self, edition_id: int, now: datetime) -> EditionStatus | None: ...
    async def pause(self, edition_id: int, reason: str) -> bool: ...
    async def pause_if_failing(self, edition_id: int) -> str | None: ...
    async def wait_on_configuration(self, edition_ids: Sequence[int], reason: str | None) -> None: ...


class ClaimOptions(Protocol):
    @property
    def batch(self) -> int: ...
    @property
    def idle_poll_seconds(self) -> float: ...
    @property
    def editions(self) -> frozenset[int] | None: ...
    @property
    def exit_when_idle(self) -> bool: ...


class Claimer:
    """Claims a batch when the relays' queues run low; when nothing is claimable, polls every
    `idle_poll_seconds` (or as soon as the senders go idle). With `exit_when_idle`, it ends once
    nothing is left (for `editions`: once those editions no longer send)."""

    def __init__(
        self,
        store: Store,
        editions: Editions,
        pool: RelayPool,
        recheck: Recheck,
        options: ClaimOptions,
        *,
        release: Callable[[list[WorkItem], float], None],
        paused: Callable[[int], None],
    ) -> None:
        self.store = store
        self.editions = editions
        self.pool = pool
        self.recheck = recheck
        self.options = options
        self.release = release
        self.paused = paused
        self.in_flight = 0  # messages handed to senders and not yet recorded
        self.sending: list[int] = []  # the editions it last claimed for
        self.backoff = options.idle_poll_seconds * 20  # before a message no relay can take is due again
        self._wake = asyncio.Event()
        self._exhausted = False

    def in_flight_changed(self, change: int) -> None:
        self.in_flight += change
        metrics.IN_FLIGHT.inc(change)
        if change < 0:
            self._wake_if_useful()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, halt: asyncio.Event, finished: asyncio.Event) -> None:
        batch, poll = self.options.batch, self.options.idle_poll_seconds
        while not halt.is_set():
            if self.pool.queued() > batch // 2:
                await _wait(halt, self._wake, poll)
                continue
            claimed = await self._claim(batch)
            # Those that every relay they may use refused (misconfigured) go back for a while.
            self.release([item for item in claimed if self.pool.route(item) is None], self.backoff)
            self._exhausted = not claimed
            if claimed:
                continue
            if self.options.exit_when_idle and await self._nothing_left():
                break
            wait = min(poll, 0.5) if self.options.exit_when_idle and self.options.editions else poll
            await _wait(halt, self._wake, wait)
        finished.set()  # tells the senders no more work is coming

    def _wake_if_useful(self) -> None:
        low = self.pool.queued() <= self.options.batch // 2 and not self._exhausted
        idle = self.pool.queued() == 0 and self.in_flight == 0
        if low or idle:
            self._wake.set()

    async def _claim(self, limit: int) -> list[WorkItem]:
        try:
            editions = await self._sending()
            items = await self.store.claim(editions, limit=limit)
            if len(items) < limit:
                await self._finish_drained(editions)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("worker.claim_failed", error=str(exc).splitlines()[0])
            return []
        self.recheck.watch({item.newsletter_id for item in items})
        return items

    async def _finish_drained(self, editions: list[tuple[int, str]]) -> None:
        now = utcnow()
        for edition_id, _ in editions:
            ended = await self.editions.finish_if_drained(edition_id, now)
            if ended is EditionStatus.DONE:
                log.info("edition.done", edition=edition_id)
            elif ended is EditionStatus.PAUSED:
                self.paused(edition_id)

    async def _sending(self) -> list[tuple[int, str]]:
        editions = await self.editions.sending()
        if self.options.editions is not None:
            editions = [e for e in editions if e[0] in self.options.editions]
        self.recheck.editions_sending({e[0] for e in editions})
        self.sending = [edition_id for edition_id, _ in editions]
        return editions

    async def _nothing_left(self) -> bool:
        if self.in_flight or self.pool.queued():
            return False
        if self.options.editions is None:
            return True
        statuses = await self.editions.statuses(sorted(self.options.editions))
        return all(status is not EditionStatus.SENDING for status in statuses.values())


async def _wait(halt: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(halt.wait()), asyncio.ensure_future(wake.wait())]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    wake.clear()
