"""The delivery worker, built from its parts: a store (the ledger), a claimer feeding the
relays' queues, one sender per connection with its messenger, a recorder committing outcomes in
groups, and a lease keeper. It runs until `stopping` is set or a configuration fault stops it;
with `exit_when_idle`, it also returns once there is nothing left to do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, astuple, dataclass
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.config import DeliveryConfig, Settings
from newsletter.context import AppContext
from newsletter.database.models import utcnow
from newsletter.delivery import metrics
from newsletter.delivery.claimer import Claimer, Editions
from newsletter.delivery.decisions import Fault
from newsletter.delivery.leases import LeaseKeeper, worker_id
from newsletter.delivery.messages import MessageFactory
from newsletter.delivery.messenger import Messenger, SmtpMessenger
from newsletter.delivery.recheck import Recheck
from newsletter.delivery.recorder import Recorder
from newsletter.delivery.relays import Relay, RelayPool
from newsletter.delivery.sender import Sender, SenderParts, SenderStats
from newsletter.delivery.work import Action, Result, WorkItem
from newsletter.delivery.workstore import Store, WorkerStore
from newsletter.logs import get_logger

log = get_logger(__name__)

MessengerFactory = Callable[[Relay], Messenger]
# How often a worker logs its counts while they change.
PROGRESS_SECONDS = 5.0

__all__ = ["ConfigurationFault", "Editions", "Worker", "WorkerOptions", "worker_id"]


class ConfigurationFault(RuntimeError):
    """Sending stopped: the configuration is at fault (the message names the setting)."""


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
        relays = settings.smtp.relay_settings()
        rate = sum(relay.config.rate_limit for relay in relays)
        limited = all(relay.config.rate_limit > 0 for relay in relays)
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
        delivery: DeliveryConfig,
    ) -> None:
        self.store = store
        self.editions = editions
        self.pool = pool
        self.messengers = messengers
        self.recheck = recheck
        self.stats = SenderStats()
        self.fault: str | None = None
        self.recorder = Recorder(store.record, self._after_failures)
        self.claimer = Claimer(
            store, editions, pool, recheck, options, release=self._release, paused=self._paused
        )
        self.leases = LeaseKeeper(store, recheck, options, requeued=self.claimer.wake)
        self.parts = SenderParts(
            pool=pool,
            factory=factory,
            recheck=recheck,
            record=self._record,
            pause_edition=self._pause,
            stop=self._stop,
            delivery=delivery,
            stats=self.stats,
            in_flight=self.claimer.in_flight_changed,
        )
        self._halt = asyncio.Event()

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
            messengers=messengers or (lambda relay: SmtpMessenger(relay.name, relay.config, key=relay.key)),
            factory=MessageFactory(context),
            recheck=Recheck(context.db.engine),
            options=options,
            delivery=settings.delivery,
        )

    @property
    def owner(self) -> str:
        return self.store.owner

    async def run(self, stopping: asyncio.Event) -> SenderStats:
        """Deliver until `stopping` (shared with the rest of the service), or until this worker
        halts on its own: a configuration fault stops sending, not the service."""
        halt = self._halt
        follow = asyncio.create_task(_follow(stopping, halt))
        await self.leases.reclaim_dead_owners()
        await self._note_waiting(None)  # whatever stopped the last worker may be fixed now
        finished = asyncio.Event()
        recorder = asyncio.create_task(self.recorder.run(), name="recorder")
        keeper = asyncio.create_task(self.leases.run(finished), name="leases")
        claimer = asyncio.create_task(self.claimer.run(halt, finished), name="claimer")
        watcher = asyncio.create_task(self._watch_relays(halt, finished), name="relays")
        reporter = asyncio.create_task(self._report_progress(finished), name="progress")
        senders = [
            asyncio.create_task(Sender(relay, self.messengers(relay), self.parts).run(halt, finished))
            for relay in self.pool.relays
            for _ in range(relay.config.concurrency)
        ]
        try:
            # A sender (or the recorder) that fails stops the worker at once (its leases go
            # back) instead of leaving the claimer feeding a queue that nobody drains.
            await _until_done([claimer, *senders], watched=recorder)
        finally:
            finished.set()
            for task in (claimer, watcher, *senders):
                task.cancel()
            await asyncio.gather(claimer, watcher, reporter, *senders, return_exceptions=True)
            await self.parts.factory.close()
            self._release(self.pool.take_all())
            self.recorder.close()
            await asyncio.gather(recorder, return_exceptions=True)
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self.leases.hand_back_own()
            if self.fault is not None:
                await self._note_waiting(self.fault)
            await self.store.close()
            follow.cancel()
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

    async def _report_progress(self, finished: asyncio.Event) -> None:
        """A `delivery.progress` line every few seconds while this worker's counts move, and one
        at the end: a send can be watched in the log without a line per message."""
        logged = astuple(SenderStats())
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), PROGRESS_SECONDS)
            counts = astuple(self.stats)
            if counts != logged:
                log.info("delivery.progress", worker=self.owner, **asdict(self.stats))
                logged = counts

    def _release(self, items: Iterable[WorkItem], delay: float | None = None) -> None:
        """Claimed but never attempted: back to the queue without costing an attempt (due again
        after `delay` seconds, if given)."""
        due = utcnow() + timedelta(seconds=delay) if delay is not None else None
        for item in items:
            self.recorder.submit_nowait(Result(item, Action.RELEASED, next_attempt_at=due))

    def _record(self, result: Result | None, started: WorkItem | None) -> asyncio.Future[bool]:
        committed = self.recorder.submit_nowait(result, started=started)
        if result is not None:
            committed.add_done_callback(lambda _: self.claimer.in_flight_changed(-1))
        return committed

    def _stop(self, fault: Fault) -> None:
        """A configuration fault no relay can work around (a DKIM key that cannot sign)."""
        if self.fault is None:
            self.fault = fault.reason
            log.error("delivery.stopped", setting=fault.setting, reason=fault.reason)
        self._halt.set()

    async def _watch_relays(self, halt: asyncio.Event, finished: asyncio.Event) -> None:
        """Messages only misconfigured relays could carry go back to the ledger; when every relay
        is misconfigured, the worker stops, saying which setting to fix."""
        while not (halt.is_set() or finished.is_set()):
            await self.pool.changed.wait()
            self._release(self.pool.stranded(), self.claimer.backoff)
            if self.pool.all_misconfigured:
                self.fault = "; ".join(sorted({relay.fault or "" for relay in self.pool.relays}))
                log.error("delivery.stopped", reason=self.fault)
                halt.set()

    async def _note_waiting(self, reason: str | None) -> None:
        """Editions this worker sends wait on a configuration fault (`reason`), or no longer."""
        editions = sorted(self.claimer.options.editions or self.claimer.sending)
        if reason is None and not editions:
            editions = [edition_id for edition_id, _ in await self.editions.sending()]
        try:
            await self.editions.wait_on_configuration(editions, reason)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("editions.waiting_not_noted", error=str(exc).splitlines()[0])

    async def _pause(self, edition_id: int, reason: str) -> None:
        self.recheck.edition_stopped(edition_id)
        if await self.editions.pause(edition_id, reason):
            metrics.EDITIONS_PAUSED.inc()
            log.error("edition.paused", edition=edition_id, reason=reason)

    async def _after_failures(self, edition_ids: set[int]) -> None:
        for edition_id in edition_ids:
            try:
                reason = await self.editions.pause_if_failing(edition_id)
            except (OperationalError, DBAPIError, OSError) as exc:
                # Weighed again after the edition's next failure, or when it drains.
                log.warning("edition.pause_check_failed", edition=edition_id, error=str(exc).splitlines()[0])
                continue
            if reason:
                self._paused(edition_id, reason)

    def _paused(self, edition_id: int, reason: str | None = None) -> None:
        metrics.EDITIONS_PAUSED.inc()
        self.recheck.edition_stopped(edition_id)
        log.warning("edition.paused", edition=edition_id, reason=reason or "too many failures")


async def _follow(stopping: asyncio.Event, halt: asyncio.Event) -> None:
    await stopping.wait()
    halt.set()


async def _until_done(work: list[asyncio.Task[None]], *, watched: asyncio.Task[None]) -> None:
    """Wait for every task of `work`; the first of them, or `watched`, to fail raises."""
    pending: set[asyncio.Task[None]] = {*work, watched}
    while not all(task.done() for task in work):
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
            if task is watched:
                raise RuntimeError("the ledger recorder stopped while messages were in flight")
