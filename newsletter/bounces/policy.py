"""What a bounce or complaint does to the reader it names, inside the recorder's transaction.

Hard: one more towards `delivery.bounce_threshold` (1: bounced at once), exactly as a refusal
at RCPT time counts (the same ledger statements). Soft: bounced once `bounces.soft_bounce_limit`
soft bounces fall within `bounces.soft_bounce_window_days`; older ones no longer count.
Complaint: unsubscribed from everything at once, the address suppressed. Anything else:
recorded, nothing changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update

from newsletter.bounces.report import BounceKind
from newsletter.config import Settings
from newsletter.database.compiled import Compiled
from newsletter.database.models import BounceEvent
from newsletter.delivery.decisions import becomes_bounced
from newsletter.delivery.store import EVENTS, LEDGER, SUBSCRIBERS, SUBSCRIPTIONS, HardBounce
from newsletter.states import SubscriberStatus, SuppressionReason
from newsletter.subscriptions import audit
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.suppressions import suppression_insert

COMPLAINT_ACTOR = Actor("complaint")
BOUNCE_EVENTS: Table = BounceEvent.__table__  # type: ignore[assignment]


_READER = Compiled(
    select(SUBSCRIBERS.c.status, SUBSCRIBERS.c.email_key)
    .where(SUBSCRIBERS.c.id == bindparam("b_reader"))
    .with_for_update()
)
_LEAVE_ALL = Compiled(delete(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.subscriber_id == bindparam("b_reader")))
_UNSUBSCRIBED = Compiled(
    update(SUBSCRIBERS)
    .where(SUBSCRIBERS.c.id == bindparam("b_reader"))
    .values(
        status=SubscriberStatus.UNSUBSCRIBED,
        unsubscribed_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
)
_RECENT_SOFT = Compiled(
    select(func.count()).where(
        BOUNCE_EVENTS.c.subscriber_id == bindparam("b_reader"),
        BOUNCE_EVENTS.c.kind == BounceKind.SOFT.value,
        BOUNCE_EVENTS.c.received_at >= bindparam("b_since"),
    )
)


class Outcome(StrEnum):
    BOUNCED = "bounced"  # the reader is mailed no more
    COUNTED = "counted"  # counted towards the threshold, below it still
    UNSUBSCRIBED = "unsubscribed"  # a complaint: unsubscribed and suppressed
    UNCHANGED = "unchanged"  # matched, but nothing to do (already gone, or not a bounce)
    UNMATCHED = "unmatched"  # names no delivery of ours: recorded for operators, nothing changed


def apply(
    conn: Connection,
    settings: Settings,
    kind: BounceKind,
    subscriber_id: int,
    *,
    edition_id: int | None,
    diagnostic: str | None,
    now: datetime,
) -> Outcome:
    if kind is BounceKind.HARD:  # its count comes back with the reader's status: no look first
        return _hard(conn, settings, subscriber_id, edition_id, diagnostic, now)
    reader = _READER.execute(conn, {"b_reader": subscriber_id}).first()
    if reader is None:
        return Outcome.UNCHANGED
    status, email_key = reader
    if kind is BounceKind.COMPLAINT:
        return _complaint(conn, subscriber_id, email_key, status, now)
    if status != SubscriberStatus.ACTIVE:  # as at RCPT time: the others are mailed nothing
        return Outcome.UNCHANGED
    if kind is BounceKind.SOFT:
        return _soft(conn, settings, subscriber_id, now)
    return Outcome.UNCHANGED


def _complaint(
    conn: Connection, subscriber_id: int, email_key: str | None, status: str, now: datetime
) -> Outcome:
    if email_key is not None:
        conn.execute(suppression_insert(conn.dialect.name, email_key, SuppressionReason.COMPLAINT, now))
    _LEAVE_ALL.execute(conn, {"b_reader": subscriber_id})
    LEDGER.skip_for(conn, subscriber_id, None, reason="complaint", now=now)
    if status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.ERASED):
        return Outcome.UNCHANGED
    _UNSUBSCRIBED.execute(conn, {"b_reader": subscriber_id, "b_now": now})
    detail = {"one_click": False, "remaining": 0, "reason": "complaint"}
    conn.execute(
        insert(EVENTS),
        [audit.event_row(audit.UNSUBSCRIBE, subscriber_id, COMPLAINT_ACTOR, detail=detail, at=now)],
    )
    return Outcome.UNSUBSCRIBED


def _hard(
    conn: Connection,
    settings: Settings,
    subscriber_id: int,
    edition_id: int | None,
    diagnostic: str | None,
    now: datetime,
) -> Outcome:
    bounce = HardBounce(subscriber_id, None, edition_id, diagnostic)
    count = LEDGER.count_hard_bounces(conn, [bounce], now=now).get(subscriber_id)
    if count is None:  # not active: as at RCPT time, the others are mailed nothing anyway
        return Outcome.UNCHANGED
    if not becomes_bounced(count, settings.delivery.bounce_threshold):
        return Outcome.COUNTED
    LEDGER.mark_bounced(conn, [subscriber_id], now=now)
    return Outcome.BOUNCED


def _soft(conn: Connection, settings: Settings, subscriber_id: int, now: datetime) -> Outcome:
    since = now - timedelta(days=settings.bounces.soft_bounce_window_days)
    recent = _RECENT_SOFT.execute(conn, {"b_reader": subscriber_id, "b_since": since}).scalar()
    if int(recent or 0) < settings.bounces.soft_bounce_limit:
        return Outcome.COUNTED
    LEDGER.mark_bounced(conn, [subscriber_id], now=now)
    return Outcome.BOUNCED
