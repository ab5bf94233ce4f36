"""Forgetting readers: erasure on request, and signups never confirmed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import Settings
from newsletter.database.models import (
    AuditEvent,
    BounceEvent,
    Click,
    Delivery,
    Subscriber,
    Subscription,
    Suppression,
    new_token_nonce,
    utcnow,
)
from newsletter.delivery.store import LEDGER, skip_for, within
from newsletter.errors import NotFound
from newsletter.logs import get_logger
from newsletter.states import SubscriberStatus
from newsletter.subscriptions import audit
from newsletter.subscriptions.addresses import Address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.service import find_by_key

log = get_logger(__name__)

ERASED = SubscriberStatus.ERASED


async def erase(session: AsyncSession, *, address: Address, actor: Actor, now: datetime | None = None) -> int:
    """Remove a subscriber's personal data, keeping a hashed suppression entry; NotFound if unknown.

    The row stays (status "erased", no address) so the delivery ledger keeps its history.
    Returns the subscriber's id.
    """
    now = now or utcnow()
    subscriber = await find_by_key(session, address.key, lock=True)
    if subscriber is None:
        raise NotFound("no subscriber has that address")
    await skip_for(session, subscriber.id, None, reason=ERASED, now=now)
    await session.execute(delete(Subscription).where(Subscription.subscriber_id == subscriber.id))
    # SMTP replies often quote the address.
    await within(session, lambda conn: LEDGER.scrub_replies(conn, subscriber.id, replacement=ERASED))
    subscriber.email = None
    subscriber.email_key = None
    subscriber.timezone = None
    # Every link ever sent to the reader stops working.
    subscriber.token_nonce = new_token_nonce()
    subscriber.legacy_links = False
    subscriber.status = SubscriberStatus.ERASED
    subscriber.updated_at = now
    await audit.scrub(session, subscriber.id)
    audit.record(session, audit.ERASURE, subscriber.id, actor, at=now)
    entry = await session.get(Suppression, address.hash)
    if entry is None:
        session.add(Suppression(email_hash=address.hash, reason=ERASED, created_at=now))
    else:  # a complaint's or an operator's entry stays, keeping only the hash
        entry.email = None
    # Bounce reports quote the address in their diagnostics too.
    await session.execute(
        update(BounceEvent)
        .where(BounceEvent.subscriber_id == subscriber.id)
        .values(recipient=None, diagnostic=None)
    )
    await _scrub_console_trail(session, address)
    # Per-reader clicks and opens become anonymous: the article's counts stay, whose goes.
    await session.execute(
        update(Click).where(Click.subscriber_id == subscriber.id).values(subscriber_id=None, delivery_id=None)
    )
    await session.flush()
    log.info("subscriber.erased", subscriber=subscriber.id, source=actor.source)
    return subscriber.id


async def _scrub_console_trail(session: AsyncSession, address: Address) -> None:
    """The console's audit trail keeps who did what, not the reader's address an operator typed."""
    named = func.lower(AuditEvent.target) == address.key
    await session.execute(update(AuditEvent).where(named).values(target=ERASED))
    quoted = func.lower(AuditEvent.detail).contains(address.key, autoescape=True)
    await session.execute(update(AuditEvent).where(quoted).values(detail=ERASED))


async def expire_pending(session: AsyncSession, *, settings: Settings, now: datetime | None = None) -> int:
    """Forget signups not confirmed within `subscriptions.pending_expiry_days`; returns how many.

    Never-confirmed subscribers are deleted with their subscriptions and outbox rows (their
    audit events lose IP and user agent); a former subscriber who signed up again and did not
    confirm goes back to "unsubscribed".
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.subscriptions.pending_expiry_days)
    never_confirmed = select(Subscriber.id).where(
        Subscriber.status == SubscriberStatus.PENDING,
        Subscriber.updated_at < cutoff,
        Subscriber.confirmed_at.is_(None),
        ~exists().where(Delivery.subscriber_id == Subscriber.id),
    )
    doomed = list((await session.scalars(never_confirmed)).all())
    for subscriber_id in doomed:
        await audit.scrub(session, subscriber_id)
        audit.record(session, audit.EXPIRY, subscriber_id, Actor("system"), at=now)
    if doomed:
        await within(session, lambda conn: LEDGER.forget_subscribers(conn, doomed))
        await session.execute(delete(Subscriber).where(Subscriber.id.in_(doomed)))
    lapsed = list(
        (
            await session.scalars(
                select(Subscriber.id).where(
                    Subscriber.status == SubscriberStatus.PENDING, Subscriber.updated_at < cutoff
                )
            )
        ).all()
    )
    for subscriber_id in lapsed:
        await session.execute(delete(Subscription).where(Subscription.subscriber_id == subscriber_id))
        await skip_for(session, subscriber_id, None, reason="expired", now=now)
    if lapsed:
        await session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(lapsed))
            .values(status=SubscriberStatus.UNSUBSCRIBED, updated_at=now),
            execution_options={"synchronize_session": False},
        )
    count = len(doomed) + len(lapsed)
    if count:
        log.info("subscribers.expired", count=count)
    return count
