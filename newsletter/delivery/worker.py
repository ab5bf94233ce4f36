"""The delivery worker: claims leased batches, sends over a pool of persistent SMTP connections,
records every outcome, and never lets a fault lose or burn through a message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from newsletter.context import AppContext
from newsletter.database.models import Edition, utcnow
from newsletter.delivery import ledger, metrics
from newsletter.delivery.failures import Verdict, classify, connection_lost, retry_delay
from newsletter.delivery.ledger import Result, WorkItem
from newsletter.delivery.messages import MessageFactory
from newsletter.delivery.ratelimit import RateLimiter
from newsletter.delivery.recheck import Recheck
from newsletter.delivery.recorder import Recorder
from newsletter.delivery.smtp import SmtpConnectionLost, SmtpSession, SmtpUnavailable
from newsletter.logs import get_logger

log = get_logger(__name__)


@dataclass
class WorkerStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> None:
        if status in ("sent", "retry", "failed", "skipped"):
            name = "retried" if status == "retry" else status
            setattr(self, name, getattr(self, name) + 1)


def worker_id() -> str:
    """host:pid:nonce — lets a restarted worker on the same host reclaim a dead one's leases at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs until `stopping` is set; with `exit_when_idle`, also returns once there is nothing
    left to do (for `editions`: once those editions are no longer sending)."""

    def __init__(
        self,
        context: AppContext,
        *,
        editions: set[int] | None = None,
        exit_when_idle: bool = False,
        owner: str | None = None,
    ) -> None:
        self.context = context
        self.settings = context.settings
        self.owner = owner or worker_id()
        self.only_editions = editions
        self.exit_when_idle = exit_when_idle
        self.stats = WorkerStats()
        delivery = self.settings.delivery
        self.lease = timedelta(seconds=delivery.lease_seconds)
        rate = self.settings.smtp.rate_limit
        # With a rate limit, claim about two seconds of work at a time so other workers get a share.
        self.batch = delivery.batch_size if rate <= 0 else max(1, min(delivery.batch_size, int(rate * 2)))
        self.queue: asyncio.Queue[WorkItem] = asyncio.Queue(maxsize=self.batch * 2)
        self.limiter = RateLimiter(rate)
        self.factory = MessageFactory(context)
        self.recheck = Recheck(context)
        self.recorder = Recorder(context, self.owner, self._after_failures)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._wake_claimer = asyncio.Event()
        self._exhausted = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> WorkerStats:
        await self._reclaim_dead_owners()
        finished = asyncio.Event()
        recorder = asyncio.create_task(self.recorder.run(), name="recorder")
        housekeeping = asyncio.create_task(self._housekeeping(finished), name="housekeeping")
        claimer = asyncio.create_task(self._claim_loop(stopping, finished), name="claimer")
        senders = [
            asyncio.create_task(self._sender(stopping, finished), name=f"sender-{n}")
            for n in range(self.settings.smtp.concurrency)
        ]
        try:
            # A sender that fails stops the worker at once (its leases go back) instead of
            # leaving the claimer feeding a queue that nobody drains.
            await asyncio.gather(claimer, *senders)
        finally:
            finished.set()
            for task in (claimer, *senders):
                task.cancel()
            await asyncio.gather(claimer, *senders, return_exceptions=True)
            await self._release_unsent()
            self.recorder.close()
            await recorder
            housekeeping.cancel()
            await asyncio.gather(housekeeping, return_exceptions=True)
        log.info(
            "worker.stopped",
            worker=self.owner,
            sent=self.stats.sent,
            retried=self.stats.retried,
            failed=self.stats.failed,
            skipped=self.stats.skipped,
        )
        return self.stats

    async def _release_unsent(self) -> None:
        """Claimed but never attempted: back to the queue without costing an attempt."""
        while not self.queue.empty():
            self.recorder.submit_nowait(Result(self.queue.get_nowait(), "released"))

    # -- claiming ------------------------------------------------------------------------------

    async def _claim_loop(self, stopping: asyncio.Event, finished: asyncio.Event) -> None:
        """Keep the local queue fed: claim a batch when it runs low; when nothing is claimable,
        poll every `idle_poll_seconds` (or when the senders go idle) rather than on every message."""
        idle_poll = self.settings.delivery.idle_poll_seconds
        while not stopping.is_set():
            if self.queue.qsize() > self.batch // 2:
                await self._wait(stopping, self._wake_claimer, idle_poll)
                continue
            claimed = await self._claim(min(self.batch, self.queue.maxsize - self.queue.qsize()))
            for item in claimed:
                self.queue.put_nowait(item)
            self._exhausted = not claimed
            if claimed:
                continue
            if self.exit_when_idle and await self._nothing_left():
                break
            await self._wait(stopping, self._wake_claimer, await self._idle_wait(idle_poll))
        # Tell the senders no more work is coming.
        finished.set()

    def _wake_claimer_if_useful(self) -> None:
        """After a message: the queue ran low (and the last claim found work), or all is idle."""
        low = self.queue.qsize() <= self.batch // 2 and not self._exhausted
        idle = self.queue.empty() and self._in_flight == 0
        if low or idle:
            self._wake_claimer.set()

    async def _claim(self, limit: int) -> list[WorkItem]:
        now = utcnow()
        try:
            async with self.context.db.engine.begin() as conn:
                items = await conn.run_sync(
                    ledger.claim_messages, owner=self.owner, limit=limit, now=now, lease=self.lease
                )
                if len(items) < limit:
                    for edition in await self._editions(conn):
                        items += await conn.run_sync(
                            ledger.claim_deliveries,
                            edition,
                            owner=self.owner,
                            limit=limit - len(items),
                            now=now,
                            lease=self.lease,
                        )
                        if len(items) >= limit:
                            break
                    else:
                        await self._finish_editions(conn, now)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("worker.claim_failed", error=str(exc).splitlines()[0])
            return []
        self.recheck.watch({item.newsletter_id for item in items if item.kind == "delivery"})
        return items

    async def _editions(self, conn: AsyncConnection) -> list[tuple[int, str]]:
        editions = await conn.run_sync(ledger.active_editions)
        if self.only_editions is not None:
            editions = [e for e in editions if e[0] in self.only_editions]
        self.recheck.editions_sending({e[0] for e in editions})
        return editions

    async def _finish_editions(self, conn: AsyncConnection, now: datetime) -> None:
        for edition_id in self.recheck.sending_editions():
            if await conn.run_sync(ledger.finish_if_done, edition_id, now=now):
                log.info("edition.done", edition=edition_id)

    async def _nothing_left(self) -> bool:
        if self._in_flight or not self.queue.empty():
            return False
        if self.only_editions is None:
            return True
        async with self.context.db.session() as session:
            statuses = (
                await session.scalars(select(Edition.status).where(Edition.id.in_(self.only_editions)))
            ).all()
        return all(status != "sending" for status in statuses)

    async def _idle_wait(self, idle_poll: float) -> float:
        """How long to sleep when nothing is due: until the next retry, if that is sooner."""
        if not self.exit_when_idle or self.only_editions is None:
            return idle_poll
        return min(idle_poll, 0.5)

    @staticmethod
    async def _wait(stopping: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        wake.clear()

    # -- sending -------------------------------------------------------------------------------

    async def _sender(self, stopping: asyncio.Event, finished: asyncio.Event) -> None:
        session = SmtpSession(self.settings.smtp)
        # The previous message's outcome is committed together with the mark that this message's
        # attempt has started, while this connection already opens the envelope; the body waits
        # for that commit. So a crash can leave at most one message per connection sent but
        # unrecorded, and it is one of the rows marked started.
        unrecorded: Result | None = None
        try:
            while not stopping.is_set():
                item = self._take_nowait()
                if item is None:
                    if unrecorded is not None:
                        self._record(unrecorded)
                        unrecorded = None
                    item = await self._next_item(stopping, finished)
                    if item is None:
                        return
                self._in_flight += 1
                metrics.IN_FLIGHT.inc()
                committed = self._record(unrecorded, started=item)
                unrecorded = None
                try:
                    unrecorded = await self._deliver(session, item, stopping, committed)
                except BaseException:
                    self._done_in_flight(None)
                    raise
                self.stats.count(unrecorded.status)
                metrics.MESSAGES.labels(_kind(item), unrecorded.status).inc()
        finally:
            if unrecorded is not None:
                await self._record(unrecorded)
            await session.close()

    def _record(self, result: Result | None, *, started: WorkItem | None = None) -> asyncio.Future[bool]:
        committed = self.recorder.submit_nowait(result, started=started)
        if result is not None:
            committed.add_done_callback(self._done_in_flight)
        return committed

    def _take_nowait(self) -> WorkItem | None:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def _done_in_flight(self, _: object) -> None:
        self._in_flight -= 1
        metrics.IN_FLIGHT.dec()
        self._wake_claimer_if_useful()

    async def _next_item(self, stopping: asyncio.Event, finished: asyncio.Event) -> WorkItem | None:
        while True:
            with contextlib.suppress(asyncio.QueueEmpty):
                return self.queue.get_nowait()
            if finished.is_set() or stopping.is_set():
                return None
            getter = asyncio.ensure_future(self.queue.get())
            stop = asyncio.ensure_future(stopping.wait())
            done_waiter = asyncio.ensure_future(finished.wait())
            await asyncio.wait({getter, stop, done_waiter}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            done_waiter.cancel()
            if getter.done():
                return getter.result()
            getter.cancel()

    async def _deliver(
        self,
        session: SmtpSession,
        item: WorkItem,
        stopping: asyncio.Event,
        committed: asyncio.Future[bool] | None = None,
    ) -> Result:
        """One SMTP transaction; the body waits for `committed` (the commit marking it started)."""
        refusal = self.recheck.refusal(item)
        if refusal == "released":
            return Result(item, "released")
        if refusal is not None:
            return Result(item, "skipped", reply=refusal)
        try:
            template = await self.factory.prepare(item)
        except (ValueError, LookupError) as exc:
            # The same for every message of this variant (a template, a newsletter no longer
            # configured): no reader's fault, so nobody's delivery fails for it.
            return await self._unbuildable(item, exc)
        try:
            message = self.factory.build(item, template)
        except ValueError as exc:  # this reader's own values (an address that cannot be sent)
            return Result(item, "failed", reply=f"message could not be built: {exc}"[:1000])
        if not await self._ready(session, stopping):
            return Result(item, "released")
        if message.smtputf8 and not session.supports_smtputf8:
            return Result(item, "failed", reply="the SMTP server does not support SMTPUTF8 for this address")
        await self.limiter.acquire()
        started = time.perf_counter()
        max_attempts = self.settings.smtp.max_attempts
        try:
            reply = await session.begin(item.email or "", smtputf8=message.smtputf8)
            if reply is None:
                if committed is not None and not await committed:
                    # Our lease ran out (the database was away longer than it lasts) and the
                    # row was handed back: another worker may be sending it. Dropping the
                    # connection at 354 delivers nothing.
                    session.abort()
                    return Result(item, "released")
                reply = await session.finish(message.data)
        except SmtpConnectionLost as exc:
            outcome = connection_lost(str(exc), attempts=item.attempts, max_attempts=max_attempts)
        except ValueError as exc:  # a control character in the address: never sendable
            return Result(item, "failed", reply=f"invalid recipient: {exc}"[:1000])
        else:
            metrics.SEND_SECONDS.observe(time.perf_counter() - started)
            metrics.SMTP_REPLIES.labels(str(reply.code)).inc()
            outcome = classify(reply, attempts=item.attempts, max_attempts=max_attempts)
        return self._result(
            item, outcome.verdict, outcome.code, outcome.reply, message.message_id, outcome.hard_bounce
        )

    async def _unbuildable(self, item: WorkItem, exc: Exception) -> Result:
        """Pause the item's edition with the reason, and hand the item back untried; a
        confirmation email is tried again after `server_down_max_backoff` seconds."""
        error = str(exc) if not isinstance(exc, KeyError) else f"newsletter {exc} is not configured"
        later = utcnow() + timedelta(seconds=self.settings.delivery.server_down_max_backoff)
        if item.kind != "delivery" or item.edition_id is None:
            log.error("message.unbuildable", kind=item.kind, error=error)
            return Result(item, "released", next_attempt_at=later)
        reason = (
            f"messages could not be built: {error}; fix it, then "
            f"`newsletter editions resume {item.edition_id}`"
        )
        async with self.context.db.engine.begin() as conn:
            paused = await conn.run_sync(ledger.pause_edition, item.edition_id, reason[:2000])
        self.recheck.edition_stopped(item.edition_id)
        if paused:
            metrics.EDITIONS_PAUSED.inc()
            log.error("edition.paused", edition=item.edition_id, reason=reason)
        return Result(item, "released")

    def _result(
        self, item: WorkItem, verdict: Verdict, code: int | None, reply: str, message_id: str, hard: bool
    ) -> Result:
        next_attempt = None
        if verdict is Verdict.RETRY:
            next_attempt = utcnow() + timedelta(seconds=retry_delay(item.attempts, self.settings.delivery))
        return Result(item, verdict.value, code, reply, message_id, next_attempt, hard)

    async def _ready(self, session: SmtpSession, stopping: asyncio.Event) -> bool:
        """Make sure the session is open; while the server is down, wait (with growing pauses)
        instead of spending the message's attempts. False if told to stop meanwhile."""
        if session.connected and not session.due_for_reconnect():
            return True
        await session.close()
        pause = 0.25
        while not stopping.is_set():
            try:
                await session.open()
                return True
            except SmtpUnavailable as exc:
                metrics.SMTP_UNAVAILABLE.inc()
                log.warning(
                    "smtp.unavailable",
                    server=f"{self.settings.smtp.host}:{self.settings.smtp.port}",
                    error=str(exc),
                    retry_in=round(pause, 2),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=pause)
                pause = min(pause * 2, self.settings.delivery.server_down_max_backoff)
        return False

    # -- housekeeping --------------------------------------------------------------------------

    async def _housekeeping(self, finished: asyncio.Event) -> None:
        delivery = self.settings.delivery
        renew_every = max(1.0, delivery.lease_seconds / 3)
        sweep_every = float(self.settings.scheduler.sweep_seconds)
        last_renew = last_sweep = time.monotonic()
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), timeout=self.recheck.interval)
            now = time.monotonic()
            try:
                await self.recheck.refresh()
                if now - last_renew >= renew_every:
                    last_renew = now
                    async with self.context.db.engine.begin() as conn:
                        await conn.run_sync(
                            ledger.renew_leases, owner=self.owner, until=utcnow() + self.lease
                        )
                if now - last_sweep >= sweep_every:
                    last_sweep = now
                    async with self.context.db.engine.begin() as conn:
                        if await conn.run_sync(ledger.requeue_expired, now=utcnow()):
                            self._wake_claimer.set()
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("worker.housekeeping_failed", error=str(exc).splitlines()[0])

    async def _reclaim_dead_owners(self) -> None:
        """Leases of workers on this host whose process is gone come back at once."""
        host = socket.gethostname()
        async with self.context.db.engine.begin() as conn:
            dead = [o for o in await conn.run_sync(ledger.lease_owners) if _dead_local_owner(o, host)]
            if dead and (count := await conn.run_sync(ledger.requeue_owners, dead, now=utcnow())):
                log.info("worker.reclaimed", rows=count, owners=len(dead))

    async def _after_failures(self, editions: set[int]) -> None:
        delivery = self.settings.delivery
        async with self.context.db.engine.begin() as conn:
            for edition_id in editions:
                reason = await conn.run_sync(
                    ledger.pause_if_failing,
                    edition_id,
                    rate=delivery.pause_failure_rate,
                    window=delivery.pause_window,
                    now=utcnow(),
                )
                if reason:
                    metrics.EDITIONS_PAUSED.inc()
                    self.recheck.edition_stopped(edition_id)
                    log.warning("edition.paused", edition=edition_id, reason=reason)


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


def _kind(item: WorkItem) -> str:
    return "confirmation" if item.kind == "message" else "digest"


async def drain(context: AppContext, *, editions: set[int] | None = None) -> WorkerStats:
    """Deliver everything due now (outbox first, then editions); return when nothing is due.

    With `editions`, return once those editions are no longer sending (waiting for their retries).
    """
    worker = Worker(context, editions=editions, exit_when_idle=True)
    return await worker.run(asyncio.Event())
