"""The one place every bounce and complaint is recorded, whichever way it came in.

One transaction per report, on the context's ledger thread (one synchronous connection: a
report costs one thread hop and a handful of statements, not an event-loop round trip for
each): the event row (once: a second copy of the same report finds its key taken and changes
nothing), the policy's effect on the reader, and the mark on the delivery's ledger row. A
caller that must not lose the report (the mailbox scanner) deletes its copy only after
`record` has returned.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, update

from newsletter.bounces import metrics, policy
from newsletter.bounces.incoming import Incoming
from newsletter.bounces.matching import Match, Matcher
from newsletter.bounces.policy import BOUNCE_EVENTS, Outcome
from newsletter.bounces.report import BounceKind
from newsletter.context import AppContext
from newsletter.database.compiled import Compiled
from newsletter.database.models import utcnow
from newsletter.database.upsert import insert_for
from newsletter.database.writer import LedgerWriter
from newsletter.delivery.store import DELIVERIES, EVENTS, MESSAGES
from newsletter.logs import get_logger
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTags

log = get_logger(__name__)

# Kinds kept as events. Auto-replies and delay warnings say nothing about the address.
RECORDED = (BounceKind.HARD, BounceKind.SOFT, BounceKind.COMPLAINT, BounceKind.UNKNOWN)
MAX_DIAGNOSTIC = 1000
MAX_GROUP = 200  # reports written in one transaction at most
_LIKELY = {
    BounceKind.HARD: Outcome.BOUNCED,
    BounceKind.SOFT: Outcome.COUNTED,
    BounceKind.COMPLAINT: Outcome.UNSUBSCRIBED,
    BounceKind.UNKNOWN: Outcome.UNCHANGED,
}

# Compiled once: a bounce storm runs each once per bounce.
_OUTCOME = Compiled(
    update(BOUNCE_EVENTS)
    .where(BOUNCE_EVENTS.c.id == bindparam("b_event"))
    .values(outcome=bindparam("b_outcome"))
)
_INSERT_AUDIT = Compiled(
    insert(EVENTS).values(
        at=bindparam("b_at"),
        kind=bindparam("b_kind"),
        subscriber_id=bindparam("b_reader"),
        detail=bindparam("b_detail"),
    )
)
_MARK_DELIVERY = Compiled(
    update(DELIVERIES).where(DELIVERIES.c.id == bindparam("b_row")).values(bounce=bindparam("b_kind"))
)
_MARK_MESSAGE = Compiled(
    update(MESSAGES).where(MESSAGES.c.id == bindparam("b_row")).values(bounce=bindparam("b_kind"))
)
_EVENT_COLUMNS = (
    "received_at", "source", "kind", "event_key", "recipient", "status", "diagnostic", "feedback_type",
    "matched_by", "outcome", "subscriber_id", "edition_id", "delivery_id", "message_id",
)  # fmt: skip


@dataclass(frozen=True)
class Recorded:
    outcome: Outcome | None  # None: not recorded (a duplicate, or ignored)
    kind: BounceKind
    duplicate: bool = False
    match: Match | None = None
    event_id: int | None = None

    @property
    def ignored(self) -> bool:
        return self.outcome is None and not self.duplicate


@dataclass(frozen=True)
class _Waiting:
    incoming: Incoming
    now: datetime
    future: asyncio.Future[Recorded]

    def settle(self, result: Recorded) -> None:
        if not self.future.done():  # its caller may have gone (a dropped connection)
            self.future.set_result(result)

    def fail(self, error: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class BounceRecorder:
    """Made once per process (the key read once); `record` may be called concurrently.

    Reports that arrive while a transaction is under way are written together in the next one
    (a group commit: one thread hop and one commit for the group, which halves the CPU of a
    bounce storm); if that transaction fails, each of its reports is tried alone, so one that
    cannot be written fails by itself."""

    def __init__(self, context: AppContext) -> None:
        self.settings = context.settings
        self.matcher = Matcher(BounceTags(context.settings), MessageIds(context.settings))
        # A context made by hand (tests) has no writer: this recorder keeps its own.
        self._own_writer = (
            None if context.writer else LedgerWriter(context.settings.database, context.db.foreground)
        )
        self._writer = context.writer or self._own_writer
        self._waiting: list[_Waiting] = []
        self._flushing: asyncio.Task[None] | None = None

    async def record(self, incoming: Incoming) -> Recorded:
        kind = incoming.report.kind
        if kind not in RECORDED:
            metrics.BOUNCES.labels(incoming.source.value, kind.value, "ignored").inc()
            log.info("bounce.ignored", source=incoming.source.value, kind=kind.value)
            return Recorded(None, kind)
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(incoming, incoming.received_at or utcnow(), future))
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())
        recorded = await future
        _report(incoming, recorded)
        return recorded

    async def _flush(self) -> None:
        assert self._writer is not None
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                try:
                    results = await self._writer.transaction(functools.partial(self._record_all, group=group))
                except Exception:
                    await self._one_by_one(group)
                else:
                    for waiting, result in zip(group, results, strict=True):
                        waiting.settle(result)
        finally:
            self._flushing = None

    async def _one_by_one(self, group: list[_Waiting]) -> None:
        assert self._writer is not None
        for waiting in group:
            try:
                result = await self._writer.transaction(functools.partial(self._record_one, waiting=waiting))
            except Exception as error:
                waiting.fail(error)
            else:
                waiting.settle(result)

    def _record_one(self, conn: Connection, *, waiting: _Waiting) -> Recorded:
        return self._record(conn, waiting.incoming, waiting.now)

    def _record_all(self, conn: Connection, *, group: list[_Waiting]) -> list[Recorded]:
        return [self._record(conn, waiting.incoming, waiting.now) for waiting in group]

    async def close(self) -> None:
        if self._own_writer is not None:
            await self._own_writer.close()

    def _record(self, conn: Connection, incoming: Incoming, now: datetime) -> Recorded:
        kind = incoming.report.kind
        match = self.matcher.match(conn, incoming)
        # Written with the event, corrected after the policy only when the guess was wrong (a
        # statement fewer for the usual case: in a storm of hard bounces, each one bounces).
        likely = _LIKELY[kind] if match is not None else Outcome.UNMATCHED
        event_id = _insert_event(conn, incoming, match, likely, now)
        if event_id is None:
            return Recorded(None, kind, duplicate=True, match=match)
        outcome = self._apply(conn, incoming, match, now)
        if outcome is not likely:
            _OUTCOME.execute(conn, {"b_event": event_id, "b_outcome": outcome.value})
        return Recorded(outcome, kind, match=match, event_id=event_id)

    def _apply(self, conn: Connection, incoming: Incoming, match: Match | None, now: datetime) -> Outcome:
        report = incoming.report
        if match is None:
            return Outcome.UNMATCHED
        if report.kind is BounceKind.UNKNOWN:
            return Outcome.UNCHANGED
        _mark_ledger_row(conn, match, report.kind)
        if report.kind is not BounceKind.HARD:  # the hard path records its own, as at RCPT time
            _INSERT_AUDIT.execute(conn, _audit_event(incoming, match, now))
        return policy.apply(
            conn,
            self.settings,
            report.kind,
            match.subscriber_id,
            edition_id=match.edition_id,
            diagnostic=report.diagnostic,
            now=now,
        )


def _insert_event(
    conn: Connection, incoming: Incoming, match: Match | None, outcome: Outcome, now: datetime
) -> int | None:
    report = incoming.report
    values = {
        "received_at": now,
        "source": incoming.source.value,
        "kind": report.kind.value,
        "event_key": incoming.event_key[:200],
        "recipient": (report.recipient or "")[:320] or None,
        "status": (report.status or "")[:20] or None,
        "diagnostic": (report.diagnostic or "")[:MAX_DIAGNOSTIC] or None,
        "feedback_type": (report.feedback_type or "")[:40] or None,
        "matched_by": match.matched_by.value if match else None,
        "outcome": outcome.value,
        "subscriber_id": match.subscriber_id if match else None,
        "edition_id": match.edition_id if match else None,
        "delivery_id": match.delivery_id if match else None,
        "message_id": match.message_id if match else None,
    }
    inserted = (
        _insert_once(conn.dialect.name).execute(conn, {f"b_{k}": v for k, v in values.items()}).scalar()
    )
    return None if inserted is None else int(inserted)


@functools.cache
def _insert_once(dialect: str) -> Compiled:
    """INSERT … ON CONFLICT (event_key) DO NOTHING RETURNING id: nothing for a report seen before."""
    statement = insert_for(dialect, BOUNCE_EVENTS).values({c: bindparam(f"b_{c}") for c in _EVENT_COLUMNS})
    return Compiled(
        statement.on_conflict_do_nothing(index_elements=["event_key"]).returning(BOUNCE_EVENTS.c.id)
    )


def _mark_ledger_row(conn: Connection, match: Match, kind: BounceKind) -> None:
    """The delivery's (or the outbox message's) row says it bounced, or drew a complaint."""
    if match.delivery_id is not None:
        _MARK_DELIVERY.execute(conn, {"b_row": match.delivery_id, "b_kind": kind.value})
    elif match.message_id is not None:
        _MARK_MESSAGE.execute(conn, {"b_row": match.message_id, "b_kind": kind.value})


def _audit_event(incoming: Incoming, match: Match, now: datetime) -> dict[str, object]:
    report = incoming.report
    detail = {
        "source": incoming.source.value,
        "kind": report.kind.value,
        "status": report.status,
        "edition": match.edition_id,
        "after_acceptance": True,
    }
    return {
        "b_at": now,
        "b_kind": "complaint" if report.kind is BounceKind.COMPLAINT else "bounce",
        "b_reader": match.subscriber_id,
        "b_detail": json.dumps(detail),
    }


def _report(incoming: Incoming, recorded: Recorded) -> None:
    outcome = "duplicate" if recorded.duplicate else (recorded.outcome or Outcome.UNCHANGED).value
    metrics.BOUNCES.labels(incoming.source.value, recorded.kind.value, outcome).inc()
    match = recorded.match
    log.info(
        "bounce.recorded",
        source=incoming.source.value,
        kind=recorded.kind.value,
        status=incoming.report.status,
        outcome=outcome,
        matched_by=match.matched_by.value if match else None,
        subscriber=match.subscriber_id if match else None,
        edition=match.edition_id if match else None,
        event=recorded.event_id,
    )
