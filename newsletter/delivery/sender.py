"""One connection's loop: take the next message queued on its relay, send it, hand the outcome
to the recorder. What each outcome means is delivery.decisions' to say; this carries it out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import Counter

from newsletter.config import DeliveryConfig
from newsletter.database.models import utcnow
from newsletter.delivery import decisions, metrics
from newsletter.delivery.decisions import ConnectionAction, Decision, Fault, FaultScope
from newsletter.delivery.messages import MessageFactory
from newsletter.delivery.messenger import Messenger
from newsletter.delivery.recheck import Recheck
from newsletter.delivery.relays import Relay, RelayPool, RelayState
from newsletter.delivery.reports import without_addresses
from newsletter.delivery.smtp import SmtpConnectionLost, SmtpUnavailable
from newsletter.delivery.work import Action, Result, WorkItem, WorkKind
from newsletter.logs import get_logger

log = get_logger(__name__)

# Hands an outcome (and/or the next attempt about to start) to the recorder; the future is done
# once committed: False when that attempt's lease is gone.
Record = Callable[[Result | None, WorkItem | None], "asyncio.Future[bool]"]
PauseEdition = Callable[[int, str], Awaitable[None]]
# Stops the worker's sending: a configuration fault that no relay can work around.
Stop = Callable[[Fault], None]


@dataclass
class SenderStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0

    def count(self, action: Action) -> None:
        if action is Action.SENT:
            self.sent += 1
        elif action is Action.RETRY:
            self.retried += 1
        elif action is Action.FAILED:
            self.failed += 1
        elif action is Action.SKIPPED:
            self.skipped += 1


@dataclass
class SenderParts:
    """What every sender of a worker shares."""

    pool: RelayPool
    factory: MessageFactory
    recheck: Recheck
    record: Record
    pause_edition: PauseEdition
    stop: Stop
    delivery: DeliveryConfig
    stats: SenderStats = field(default_factory=SenderStats)
    in_flight: Callable[[int], None] = lambda change: None


class Sender:
    def __init__(self, relay: Relay, messenger: Messenger, parts: SenderParts) -> None:
        self.relay = relay
        self.messenger = messenger
        self.parts = parts
        self._pause = 0.0

    async def run(self, stopping: asyncio.Event, finished: asyncio.Event) -> None:
        # The previous message's outcome is committed together with the mark that this message's
        # attempt has started, while this connection already opens the envelope; the body waits
        # for that commit. So a crash can leave at most one message per connection sent but
        # unrecorded, and it is one of the rows marked started.
        unrecorded: Result | None = None
        try:
            while not stopping.is_set() and self.relay.state is not RelayState.MISCONFIGURED:
                item = _take_nowait(self.relay)
                if item is None:
                    self._flush(unrecorded)
                    unrecorded = None
                    item = await self._next(stopping, finished)
                    if item is None:
                        return
                if not self.messenger.ready() and not await self._connect(item, stopping):
                    self._flush(unrecorded)
                    unrecorded = None
                    continue  # the loop ends here if the relay was found misconfigured
                self.parts.in_flight(+1)
                committed = self.parts.record(unrecorded, item)
                unrecorded = None
                try:
                    unrecorded = await self._deliver(item, committed)
                except BaseException:
                    self.parts.in_flight(-1)
                    raise
                self.parts.stats.count(unrecorded.action)
                _counted(item.kind, unrecorded.action).inc()
                if unrecorded.action is Action.FAILED:
                    _log_failure(unrecorded)
        finally:
            if unrecorded is not None:
                await self.parts.record(unrecorded, None)
            await self.messenger.close()

    def _flush(self, unrecorded: Result | None) -> None:
        """Record the last outcome now: no next attempt is coming to share its commit."""
        if unrecorded is not None:
            self.parts.record(unrecorded, None)

    async def _next(self, stopping: asyncio.Event, finished: asyncio.Event) -> WorkItem | None:
        """The next message for this relay; None once no more work is coming."""
        while True:
            item = _take_nowait(self.relay)
            if item is not None:
                return item
            if finished.is_set() or stopping.is_set():
                return None
            getter = asyncio.ensure_future(self.relay.queue.get())
            ending = [asyncio.ensure_future(event.wait()) for event in (stopping, finished)]
            await asyncio.wait([getter, *ending], return_when=asyncio.FIRST_COMPLETED)
            for waiter in ending:
                waiter.cancel()
            if getter.done():
                return getter.result()
            getter.cancel()

    async def _connect(self, item: WorkItem, stopping: asyncio.Event) -> bool:
        """Open the connection. While the relay is away: wait (with growing pauses), its queue
        handed to relays in rotation; refused configuration: out of rotation. `item` goes back to
        the pool either way. False when not connected."""
        try:
            await self.messenger.open()
        except SmtpUnavailable as exc:
            metrics.SMTP_UNAVAILABLE.inc()
            decision = decisions.after_open_failure(exc)
            if self.parts.pool.route(item, avoiding=self.relay) is None:
                self.relay.queue.put_nowait(item)  # nowhere else: handed back with the rest
            if decision.action is ConnectionAction.STOP:
                self.parts.pool.misconfigured(self.relay, decision.reason)
                log.error(
                    "smtp.misconfigured",
                    relay=self.relay.name,
                    setting=decision.setting,
                    error=decision.reason,
                )
                return False
            self._pause = decisions.reconnect_pause(self._pause, self.parts.delivery)
            self.parts.pool.away(self.relay, self._pause, decision.reason)
            log.warning(
                "smtp.unavailable",
                relay=self.relay.name,
                server=f"{self.relay.config.host}:{self.relay.config.port}",
                error=decision.reason,
                retry_in=round(self._pause, 2),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self._pause)
            return False
        self._pause = 0.0
        self.parts.pool.back(self.relay)
        return True

    async def _deliver(self, item: WorkItem, committed: asyncio.Future[bool]) -> Result:
        """One SMTP transaction; the body waits for `committed` (the commit marking it started)."""
        parts = self.parts
        refusal = parts.recheck.refusal(item)
        if refusal is not None:
            return self._result(item, decisions.after_refusal(refusal))
        try:
            template = await parts.factory.prepare(item)
        except (ValueError, LookupError) as exc:
            return await self._carry_out(item, self._build_failure(item, exc, template=True))
        try:
            message = await parts.factory.build(item, template)
        except ValueError as exc:
            return await self._carry_out(item, self._build_failure(item, exc, template=False))
        if message.smtputf8 and not self.messenger.supports_smtputf8:
            return self._result(item, decisions.smtputf8_unsupported())
        if not self.relay.limiter.unlimited:
            await self.relay.limiter.acquire()
        started = time.perf_counter()
        max_attempts = self.relay.config.max_attempts
        try:
            reply = await self.messenger.send(
                item.email or "",
                message.data,
                smtputf8=message.smtputf8,
                go_ahead=committed,
                dot_stuffed=message.dot_stuffed,
                sender=parts.factory.return_path(item),
            )
        except SmtpConnectionLost as exc:
            decision = decisions.after_lost_connection(
                str(exc), attempts=item.attempts, max_attempts=max_attempts, config=parts.delivery
            )
        except ValueError as exc:  # a control character in the address
            decision = decisions.invalid_recipient(str(exc))
        else:
            if reply is None:
                return self._result(item, decisions.after_lost_lease())
            metrics.SEND_SECONDS.observe(time.perf_counter() - started)
            _replied(reply.code).inc()
            decision = decisions.after_reply(
                reply,
                attempts=item.attempts,
                max_attempts=max_attempts,
                config=parts.delivery,
                relay=self.relay.key,
            )
        return await self._carry_out(item, decision, message.message_id)

    def _build_failure(self, item: WorkItem, error: Exception, *, template: bool) -> Decision:
        return decisions.after_build_failure(
            error,
            template=template,
            edition_id=item.edition_id,
            retry_seconds=self.parts.delivery.server_down_max_backoff,
        )

    async def _carry_out(self, item: WorkItem, decision: Decision, message_id: str | None = None) -> Result:
        """What a decision asks beyond its message: pause the edition, or take the relay (or all
        sending) out for a configuration fault."""
        if decision.pause_edition is not None and item.edition_id is not None:
            await self.parts.pause_edition(item.edition_id, decision.pause_edition)
        elif decision.action is Action.RELEASED and decision.reply and decision.fault is None:
            log.error("message.unbuildable", kind=item.kind.value, error=decision.reply)
        fault = decision.fault
        if fault is not None and fault.scope is FaultScope.RELAY:
            log.error("smtp.misconfigured", relay=self.relay.name, setting=fault.setting, error=fault.reason)
            self.parts.pool.misconfigured(self.relay, fault.reason)
        elif fault is not None:
            self.parts.stop(fault)
        return self._result(item, decision, message_id)

    def _result(self, item: WorkItem, decision: Decision, message_id: str | None = None) -> Result:
        next_attempt = utcnow() + timedelta(seconds=decision.delay) if decision.delay is not None else None
        released = decision.action is Action.RELEASED
        return Result(
            item,
            decision.action,
            decision.code,
            decision.reply or None,
            message_id,
            next_attempt,
            decision.hard_bounce,
            self.relay.name if not released else None,
        )


@functools.cache
def _counted(kind: WorkKind, action: Action) -> Counter:
    """The metric's child for each outcome, looked up once rather than per message."""
    return metrics.MESSAGES.labels(kind.value, action.value)


@functools.lru_cache(maxsize=256)
def _replied(code: int) -> Counter:
    return metrics.SMTP_REPLIES.labels(str(code))


def _take_nowait(relay: Relay) -> WorkItem | None:
    try:
        return relay.queue.get_nowait()
    except asyncio.QueueEmpty:
        return None


def _log_failure(result: Result) -> None:
    """One line per permanent failure, with what an operator needs and no reader's address."""
    item = result.item
    log.warning(
        "delivery.failed",
        kind=item.kind.value,
        row=item.id,
        subscriber=item.subscriber_id,
        edition=item.edition_id,
        relay=result.relay,
        attempts=item.attempts,
        code=result.code,
        reply=without_addresses(result.reply or ""),
        bounce=result.hard_bounce,
    )
