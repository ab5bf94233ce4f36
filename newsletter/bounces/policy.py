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
from newsletter.database.models import BounceEvent
from newsletter.delivery.decisions import becomes_bounced
from newsletter.delivery.store import EVENTS, LEDGER, SUBSCRIBERS, SUBSCRIPTIONS, HardBounce
from newsletter.states import SubscriberStatus, SuppressionReason
from newsletter.subscriptions import audit
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.suppressions import suppression_insert

COMPLAINT_ACTOR = Actor("complaint")
BOUNCE_EVENTS: Table = BounceEvent.__table__  # type: ignore[assignment]


_READER = (
    select(SUBSCRIBERS.c.status, SUBSCRIBERS.c.email_key)
    .where(SUBSCRIBERS.c.id == bindparam("id"))
    .with_for_update()
)
_LEAVE_ALL = delete(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.subscriber_id == bindparam("reader"))
_UNSUBSCRIBED = (
    update(SUBSCRIBERS)
    .where(SUBSCRIBERS.c.id == bindparam("reader"))
    .values(
        status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=bindparam("now"), updated_at=bindparam("now")
    )
)
_RECENT_SOFT = select(func.count()).where(
    BOUNCE_EVENTS.c.subscriber_id == bindparam("reader"),
    BOUNCE_EVENTS.c.kind == BounceKind.SOFT.value,
    BOUNCE_EVENTS.c.received_at >= bindparam("since"),
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
    reader = conn.execute(_READER, {"id": subscriber_id}).one_or_none()
    if reader is None:
        return Outcome.UNCHANGED
    if kind is BounceKind.COMPLAINT:
        return _complaint(conn, subscriber_id, reader.email_key, reader.status, now)
    if reader.status != SubscriberStatus.ACTIVE:  # as at RCPT time: the others are mailed nothing
        return Outcome.UNCHANGED
    if kind is BounceKind.HARD:
        return _hard(conn, settings, subscriber_id, edition_id, diagnostic, now)
    if kind is BounceKind.SOFT:
        return _soft(conn, settings, subscriber_id, now)
    return Outcome.UNCHANGED


def _complaint(
    conn: Connection, subscriber_id: int, email_key: str | None, status: str, now: datetime
) -> Outcome:
    if email_key is not None:
        conn.execute(suppression_insert(conn.dialect.name, email_key, SuppressionReason.COMPLAINT, now))
    conn.execute(_LEAVE_ALL, {"reader": subscriber_id})
    LEDGER.skip_for(conn, subscriber_id, None, reason="complaint", now=now)
    if status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.ERASED):
        return Outcome.UNCHANGED
    conn.execute(_UNSUBSCRIBED, {"reader": subscriber_id, "now": now})
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
    count = LEDGER.count_hard_bounces(conn, [bounce], now=now).get(subscriber_id, 0)
    if not becomes_bounced(count, settings.delivery.bounce_threshold):
        return Outcome.COUNTED
    LEDGER.mark_bounced(conn, [subscriber_id], now=now)
    return Outcome.BOUNCED


def _soft(conn: Connection, settings: Settings, subscriber_id: int, now: datetime) -> Outcome:
    since = now - timedelta(days=settings.bounces.soft_bounce_window_days)
    recent = conn.scalar(_RECENT_SOFT, {"reader": subscriber_id, "since": since})
    if int(recent or 0) < settings.bounces.soft_bounce_limit:
        return Outcome.COUNTED
    LEDGER.mark_bounced(conn, [subscriber_id], now=now)
    return Outcome.BOUNCED
