"""What a bounce or complaint does to the reader it names.

Hard: one more towards `delivery.bounce_threshold` (1: bounced at once), as a refusal at RCPT
time counts. Soft: bounced once `bounces.soft_bounce_limit` soft bounces fall within
`bounces.soft_bounce_window_days`; older ones no longer count. Complaint: unsubscribed from
everything at once, the address suppressed. Anything else: recorded, nothing changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.bounces.report import BounceKind
from newsletter.config import Settings
from newsletter.database.models import BounceEvent, Subscriber
from newsletter.delivery.decisions import becomes_bounced
from newsletter.delivery.store import skip_for
from newsletter.states import SubscriberStatus, SuppressionReason
from newsletter.subscriptions import service
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.suppressions import suppress

COMPLAINT_ACTOR = Actor("complaint")
# Readers a bounce can still change: the others receive nothing anyway.
_MAILED = (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING)


class Outcome(StrEnum):
    BOUNCED = "bounced"  # the reader is mailed no more
    COUNTED = "counted"  # counted towards the threshold, below it still
    UNSUBSCRIBED = "unsubscribed"  # a complaint: unsubscribed and suppressed
    UNCHANGED = "unchanged"  # matched, but nothing to do (already gone, or not a bounce)
    UNMATCHED = "unmatched"  # names no delivery of ours: recorded for operators, nothing changed


async def apply(
    session: AsyncSession, settings: Settings, kind: BounceKind, subscriber_id: int, *, now: datetime
) -> Outcome:
    subscriber = await service.locked(session, subscriber_id)
    if subscriber is None:
        return Outcome.UNCHANGED
    if kind is BounceKind.COMPLAINT:
        return await _complaint(session, subscriber, now)
    if kind is BounceKind.HARD:
        return await _hard(session, settings, subscriber, now)
    if kind is BounceKind.SOFT:
        return await _soft(session, settings, subscriber, now)
    return Outcome.UNCHANGED


async def _complaint(session: AsyncSession, subscriber: Subscriber, now: datetime) -> Outcome:
    if subscriber.email_key is not None:
        await suppress(session, subscriber.email_key, SuppressionReason.COMPLAINT, now=now)
    await service.unsubscribe(
        session, subscriber_id=subscriber.id, newsletter_id=None, actor=COMPLAINT_ACTOR, now=now
    )
    return Outcome.UNSUBSCRIBED


async def _hard(session: AsyncSession, settings: Settings, subscriber: Subscriber, now: datetime) -> Outcome:
    subscriber.hard_bounces += 1  # the row is locked: no lost update
    subscriber.updated_at = now
    if subscriber.status not in _MAILED:
        return Outcome.UNCHANGED
    if not becomes_bounced(subscriber.hard_bounces, settings.delivery.bounce_threshold):
        return Outcome.COUNTED
    return await _bounced(session, subscriber, now)


async def _soft(session: AsyncSession, settings: Settings, subscriber: Subscriber, now: datetime) -> Outcome:
    if subscriber.status not in _MAILED:
        return Outcome.UNCHANGED
    since = now - timedelta(days=settings.bounces.soft_bounce_window_days)
    recent = await session.scalar(
        select(func.count()).where(
            BounceEvent.subscriber_id == subscriber.id,
            BounceEvent.kind == BounceKind.SOFT.value,
            BounceEvent.received_at >= since,
        )
    )
    if int(recent or 0) < settings.bounces.soft_bounce_limit:
        return Outcome.COUNTED
    return await _bounced(session, subscriber, now)


async def _bounced(session: AsyncSession, subscriber: Subscriber, now: datetime) -> Outcome:
    subscriber.status = SubscriberStatus.BOUNCED
    subscriber.updated_at = now
    await skip_for(session, subscriber.id, None, reason=SubscriberStatus.BOUNCED, now=now)
    return Outcome.BOUNCED
