"""The one place every bounce and complaint is recorded, whichever way it came in.

One transaction per report: the event row (once: a second copy of the same report finds its
key taken and changes nothing), the policy's effect on the reader, and the mark on the
delivery's ledger row. A caller that must not lose the report (the mailbox scanner) deletes
its copy only after `record` has returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.bounces import metrics, policy
from newsletter.bounces.incoming import Incoming
from newsletter.bounces.matching import Match, Matcher
from newsletter.bounces.policy import Outcome
from newsletter.bounces.report import BounceKind
from newsletter.context import AppContext
from newsletter.database.models import BounceEvent, Delivery, Event, Message, utcnow
from newsletter.database.upsert import insert_for
from newsletter.logs import get_logger
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTags

log = get_logger(__name__)

# Kinds kept as events. Auto-replies and delay warnings say nothing about the address.
RECORDED = (BounceKind.HARD, BounceKind.SOFT, BounceKind.COMPLAINT, BounceKind.UNKNOWN)
MAX_DIAGNOSTIC = 1000


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


class BounceRecorder:
    """Made once per process (the key read once); `record` is safe to call concurrently."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.matcher = Matcher(BounceTags(context.settings), MessageIds(context.settings))

    async def record(self, incoming: Incoming) -> Recorded:
        kind = incoming.report.kind
        if kind not in RECORDED:
            metrics.BOUNCES.labels(incoming.source.value, kind.value, "ignored").inc()
            log.info("bounce.ignored", source=incoming.source.value, kind=kind.value)
            return Recorded(None, kind)
        now = incoming.received_at or utcnow()
        async with self.context.db.session() as session, session.begin():
            match = await self.matcher.match(session, incoming)
            event_id = await _insert_event(session, incoming, match, now)
            if event_id is None:
                recorded = Recorded(None, kind, duplicate=True, match=match)
            else:
                outcome = await self._apply(session, incoming, match, now)
                await _finish_event(session, event_id, outcome)
                recorded = Recorded(outcome, kind, match=match, event_id=event_id)
        _report(incoming, recorded)
        return recorded

    async def _apply(
        self, session: AsyncSession, incoming: Incoming, match: Match | None, now: datetime
    ) -> Outcome:
        kind = incoming.report.kind
        if match is None:
            return Outcome.UNMATCHED
        if kind is BounceKind.UNKNOWN:
            return Outcome.UNCHANGED
        await _mark_ledger_row(session, match, kind)
        session.add(_audit_event(incoming, match, now))
        return await policy.apply(session, self.context.settings, kind, match.subscriber_id, now=now)


async def _insert_event(
    session: AsyncSession, incoming: Incoming, match: Match | None, now: datetime
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
        "outcome": Outcome.UNMATCHED.value if match is None else Outcome.UNCHANGED.value,
        "subscriber_id": match.subscriber_id if match else None,
        "edition_id": match.edition_id if match else None,
        "delivery_id": match.delivery_id if match else None,
        "message_id": match.message_id if match else None,
    }
    conn = await session.connection()
    statement = insert_for(conn.dialect.name, BounceEvent).values(values)
    result = await conn.execute(
        statement.on_conflict_do_nothing(index_elements=["event_key"]).returning(BounceEvent.id)
    )
    return result.scalar()


async def _finish_event(session: AsyncSession, event_id: int, outcome: Outcome) -> None:
    await session.execute(update(BounceEvent).where(BounceEvent.id == event_id).values(outcome=outcome.value))


async def _mark_ledger_row(session: AsyncSession, match: Match, kind: BounceKind) -> None:
    """The delivery's (or the outbox message's) row says it bounced, or drew a complaint."""
    if match.delivery_id is not None:
        await session.execute(
            update(Delivery).where(Delivery.id == match.delivery_id).values(bounce=kind.value)
        )
    elif match.message_id is not None:
        await session.execute(update(Message).where(Message.id == match.message_id).values(bounce=kind.value))


def _audit_event(incoming: Incoming, match: Match, now: datetime) -> Event:
    report = incoming.report
    detail = {
        "source": incoming.source.value,
        "kind": report.kind.value,
        "status": report.status,
        "edition": match.edition_id,
        "after_acceptance": True,
    }
    audit_kind = "complaint" if report.kind is BounceKind.COMPLAINT else "bounce"
    return Event(at=now, kind=audit_kind, subscriber_id=match.subscriber_id, detail=json.dumps(detail))


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
