"""The delivery worker, built from its parts: a store (the ledger), messengers (one per
connection, on each relay), a claimer feeding the relays' queues, senders, a recorder committing
outcomes in groups, and a lease keeper. It runs until `stopping` is set; with `exit_when_idle`,
it also returns once there is nothing left to do (for `editions`: once those editions are no
longer sending)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import utcnow
from newsletter.delivery import metrics
from newsletter.delivery.decisions import Action
from newsletter.delivery.messages import MessageFactory
from newsletter.delivery.messenger import Messenger, SmtpMessenger
from newsletter.delivery.recheck import Recheck
from newsletter.delivery.recorder import Recorder
from newsletter.delivery.relays import Relay, RelayPool
from newsletter.delivery.sender import Sender, SenderParts, SenderStats
from newsletter.delivery.work import Result, WorkItem
from newsletter.delivery.workstore import Store, WorkerStore
from newsletter.logs import get_logger
from newsletter.states import EditionStatus

log = get_logger(__name__)

MessengerFactory = Callable[[Relay], Messenger]


class Editions(Protocol):
    """What the worker asks of the editions it delivers; their lifecycle is editions/'."""

    async def sending(self) -> list[tuple[int, str]]: ...
    async def statuses(self, edition_ids: Sequence[int]) -> dict[int, EditionStatus]: ...
    async def finish_if_drained(self, edition_id: int, now: datetime) -> EditionStatus | None: ...
    async def pause(self, edition_id: int, reason: str) -> bool: ...
    async def pause_if_failing(self, edition_id: int) -> str | None: ...


class ConfigurationFault(RuntimeError):
    """Every relay refused this configuration (the message names the setting): sending stopped."""


@dataclass(frozen=True)
class WorkerOptions:
    batch: int
    lease: timedelta
    idle_poll_seconds: float
    sweep_seconds: float
    editions: frozenset[int] | None = None  # only these
    exit_when_idle: bool = False

    @classmethod
    def of(
        cls, settings: Settings, *, editions: set[int] | None = None, exit_when_idle: bool = False
    ) -> WorkerOptions:
        delivery = settings.delivery
        rate = sum(config.rate_limit for _, config, _ in settings.smtp.relay_settings())
        limited = all(config.rate_limit > 0 for _, config, _ in settings.smtp.relay_settings())
        # With rate limits, claim about two seconds of work at a time so other workers get a share.
        batch = max(1, min(delivery.batch_size, int(rate * 2))) if limited else delivery.batch_size
        return cls(
            batch=batch,
            lease=timedelta(seconds=delivery.lease_seconds),
            idle_poll_seconds=delivery.idle_poll_seconds,
            sweep_seconds=float(settings.scheduler.sweep_seconds),
            editions=frozenset(editions) if editions is not None else None,
            exit_when_idle=exit_when_idle,
        )


def worker_id() -> str:
    """host:pid:nonce — lets a restarted worker on the same host reclaim a dead one's leases at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        *,
        store: Store,
        editions: Editions,
        pool: RelayPool,
        messengers: MessengerFactory,
        factory: MessageFactory,
        recheck: Recheck,
        options: WorkerOptions,
        settings: Settings,
    ) -> None:
        self.store = store
        self.editions = editions
        self.pool = pool
        self.messengers = messengers
        self.options = options
        self.recorder = Recorder(store.record, self._after_failures)
        self.stats = SenderStats()
        self.recheck = recheck
        self.parts = SenderParts(
            pool=pool,
            factory=factory,
            recheck=recheck,
            record=self._record,
            pause_edition=self._pause,
            delivery=settings.delivery,
            stats=self.stats,
            in_flight=self._in_flight_changed,
        )
        self.fault: str | None = None
        self._in_flight = 0
        self._wake_claimer = asyncio.Event()
        self._exhausted = False

    @classmethod
    def assemble(
        cls,
        context: AppContext,
        editions: Editions,
        *,
        only: set[int] | None = None,
        exit_when_idle: bool = False,
        store: Store | None = None,
        messengers: MessengerFactory | None = None,
    ) -> Worker:
        """A worker from the real parts; a test swaps in its own `store` or `messengers`.
        Raises ConfigError for a configuration it cannot send with (a bad DKIM key)."""
        settings = context.settings
        options = WorkerOptions.of(settings, editions=only, exit_when_idle=exit_when_idle)
        return cls(
            store=store
            or WorkerStore(
                context.db,
                settings.database,
                owner=worker_id(),
                lease=options.lease,
                config=settings.delivery,
            ),
            editions=editions,
            pool=RelayPool(settings.smtp, settings.newsletters, limiters={}),
            messengers=messengers or (lambda relay: SmtpMessenger(relay.name, relay.config)),
            factory=MessageFactory(context),
            recheck=Recheck(context),
            options=options,
            settings=settings,
        )

    @property
    def owner(self) -> str:
        return self.store.owner

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> SenderStats:
        await self._reclaim_dead_owners()
        finished = asyncio.Event()
        recorder = asyncio.create_task(self.recorder.run(), name="recorder")
        keeper = asyncio.create_task(self._keep_leases(finished), name="leases")
        claimer = asyncio.create_task(self._claim_loop(stopping, finished), name="claimer")
        watcher = asyncio.create_task(self._watch_relays(stopping, finished), name="relays")
        senders = [
            asyncio.create_task(Sender(relay, self.messengers(relay), self.parts).run(stopping, finished))
            for relay in self.pool.relays
            for _ in range(relay.config.concurrency)
        ]
        try:
            # A sender that fails stops the worker at once (its leases go back) instead of
            # leaving the claimer feeding a queue that nobody drains.
            await asyncio.gather(claimer, *senders)
        finally:
            finished.set()
            for task in (claimer, watcher, *senders):
                task.cancel()
            await asyncio.gather(claimer, watcher, *senders, return_exceptions=True)
            self._release(self.pool.take_all())
            self.recorder.close()
            await recorder
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self.store.close()
        log.info(
            "worker.stopped",
            worker=self.owner,
            sent=self.stats.sent,
            retried=self.stats.retried,
            failed=self.stats.failed,
            skipped=self.stats.skipped,
        )
        if self.fault is not None:
            raise ConfigurationFault(self.fault)
        return self.stats

    def _release(self, items: list[WorkItem]) -> None:
        """Claimed but never attempted: back to the queue without costing an attempt."""
        for item in items:
            self.recorder.submit_nowait(Result(item, Action.RELEASED))

    def _record(self, result: Result | None, started: WorkItem | None) -> asyncio.Future[bool]:
        committed = self.recorder.submit_nowait(result, started=started)
        if result is not None:
            committed.add_done_callback(lambda _: self._in_flight_changed(-1))
        return committed

    def _in_flight_changed(self, change: int) -> None:
        self._in_flight += change
        metrics.IN_FLIGHT.inc(change)
        if change < 0:
            self._wake_claimer_if_useful()

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, stopping: asyncio.Event, finished: asyncio.Event) -> None:
        """Keep the relays' queues fed: claim a batch when they run low; when nothing is
        claimable, poll every `idle_poll_seconds` (or when the senders go idle)."""
        batch, poll = self.options.batch, self.options.idle_poll_seconds
        while not stopping.is_set():
            if self.pool.queued() > batch // 2:
                await _wait(stopping, self._wake_claimer, poll)
                continue
            claimed = await self._claim(batch)
            for item in claimed:
                if self.pool.route(item) is None:  # every relay it may use is misconfigured
                    self._release([item])
            self._exhausted = not claimed
            if claimed:
                continue
            if self.options.exit_when_idle and await self._nothing_left():
                break
            wait = min(poll, 0.5) if self.options.exit_when_idle and self.options.editions else poll
            await _wait(stopping, self._wake_claimer, wait)
        finished.set()  # tells the senders no more work is coming

    def _wake_claimer_if_useful(self) -> None:
        low = self.pool.queued() <= self.options.batch // 2 and not self._exhausted
        idle = self.pool.queued() == 0 and self._in_flight == 0
        if low or idle:
            self._wake_claimer.set()

    async def _claim(self, limit: int) -> list[WorkItem]:
        try:
            editions = await self._sending()
            items = await self.store.claim(editions, limit=limit)
            if len(items) < limit:
                now = utcnow()
                for edition_id, _ in editions:
                    ended = await self.editions.finish_if_drained(edition_id, now)
                    if ended is EditionStatus.DONE:
                        log.info("edition.done", edition=edition_id)
                    elif ended is EditionStatus.PAUSED:
                        self._paused(edition_id)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("worker.claim_failed", error=str(exc).splitlines()[0])
            return []
        self.recheck.watch({item.newsletter_id for item in items})
        return items

    async def _sending(self) -> list[tuple[int, str]]:
        editions = await self.editions.sending()
        if self.options.editions is not None:
            editions = [e for e in editions if e[0] in self.options.editions]
        self.recheck.editions_sending({e[0] for e in editions})
        return editions

    async def _nothing_left(self) -> bool:
        if self._in_flight or self.pool.queued():
            return False
        if self.options.editions is None:
            return True
        statuses = await self.editions.statuses(sorted(self.options.editions))
        return all(status is not EditionStatus.SENDING for status in statuses.values())

    # -- relays ------------------------------------------------------------------------------

    async def _watch_relays(self, stopping: asyncio.Event, finished: asyncio.Event) -> None:
        """Messages only misconfigured relays could carry go back to the ledger; when every relay
        is misconfigured, the worker stops, saying which setting to fix."""
        while not (stopping.is_set() or finished.is_set()):
            await self.pool.changed.wait()
            self._release(self.pool.stranded())
            if self.pool.all_misconfigured:
                self.fault = "; ".join(sorted({relay.fault or "" for relay in self.pool.relays}))
                log.error("delivery.stopped", reason=self.fault)
                stopping.set()

    # -- editions ----------------------------------------------------------------------------

    async def _pause(self, edition_id: int, reason: str) -> None:
        self.recheck.edition_stopped(edition_id)
        if await self.editions.pause(edition_id, reason):
            metrics.EDITIONS_PAUSED.inc()
            log.error("edition.paused", edition=edition_id, reason=reason)

    async def _after_failures(self, edition_ids: set[int]) -> None:
        for edition_id in edition_ids:
            reason = await self.editions.pause_if_failing(edition_id)
            if reason:
                self._paused(edition_id, reason)

    def _paused(self, edition_id: int, reason: str | None = None) -> None:
        metrics.EDITIONS_PAUSED.inc()
        self.recheck.edition_stopped(edition_id)
        log.warning("edition.paused", edition=edition_id, reason=reason or "too many failures")

    # -- leases ------------------------------------------------------------------------------

    async def _keep_leases(self, finished: asyncio.Event) -> None:
        """Re-check readers and editions often, renew this worker's leases, and (the one sweeper
        of the service) hand back every worker's expired ones."""
        renew_every = max(1.0, self.options.lease.total_seconds() / 3)
        last_renew = last_sweep = time.monotonic()
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), timeout=self.recheck.interval)
            now = time.monotonic()
            try:
                await self.recheck.refresh()
                if now - last_renew >= renew_every:
                    last_renew = now
                    await self.store.renew()
                if now - last_sweep >= self.options.sweep_seconds:
                    last_sweep = now
                    if requeued := await self.store.sweep():
                        log.info("leases.requeued", rows=requeued)
                        self._wake_claimer.set()
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("worker.housekeeping_failed", error=str(exc).splitlines()[0])

    async def _reclaim_dead_owners(self) -> None:
        """Leases of workers on this host whose process is gone come back at once."""
        host = socket.gethostname()
        dead = [owner for owner in await self.store.lease_owners() if _dead_local_owner(owner, host)]
        if dead and (count := await self.store.reclaim(dead)):
            log.info("worker.reclaimed", rows=count, owners=len(dead))


def _dead_local_owner(owner: str, host: str) -> bool:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def _wait(stopping: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    wake.clear()
