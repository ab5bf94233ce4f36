"""A reader's own actions after signing up: confirm, unsubscribe, preferences.

Each function works inside the caller's transaction and never commits or sends mail:
what must be emailed becomes an outbox row that commits with the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import Subscriber, Subscription, Suppression, utcnow
from newsletter.delivery.store import skip_for
from newsletter.logs import get_logger
from newsletter.personal.tokens import LinkNoLongerValid, LinkOwner, TokenData, owns
from newsletter.states import SubscriberStatus, SuppressionReason
from newsletter.subscriptions import audit
from newsletter.subscriptions.addresses import email_hash
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import Choices
from newsletter.subscriptions.signup import current_choices, replace_subscriptions

log = get_logger(__name__)

NO_LONGER_VALID = "this link is no longer valid"


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already-confirmed"


@dataclass(frozen=True)
class Confirmed:
    outcome: Confirmation
    owner: LinkOwner  # for the links the confirmation page offers


async def find_by_key(session: AsyncSession, key: str, *, lock: bool = False) -> Subscriber | None:
    query = select(Subscriber).where(Subscriber.email_key == key)
    return await session.scalar(query.with_for_update() if lock else query)


async def locked(session: AsyncSession, subscriber_id: int) -> Subscriber | None:
    """The subscriber, row-locked on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises)."""
    query = select(Subscriber).where(Subscriber.id == subscriber_id).with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))


async def link_holder(
    session: AsyncSession, link: TokenData, *, statuses: tuple[str, ...], lock: bool = False
) -> Subscriber:
    """The subscriber a verified link belongs to, in one of `statuses`; else LinkNoLongerValid.

    A link belongs to a subscriber when it carries their nonce: an id alone could name a later
    subscriber who was given the same id."""
    if lock:
        subscriber = await locked(session, link.subscriber_id)
    else:
        subscriber = await session.get(Subscriber, link.subscriber_id)
    if (
        subscriber is None
        or subscriber.status not in statuses
        or not owns(link, nonce=subscriber.token_nonce, legacy_links=subscriber.legacy_links)
    ):
        raise LinkNoLongerValid(NO_LONGER_VALID)
    return subscriber


def link_owner(subscriber: Subscriber) -> LinkOwner:
    return LinkOwner(subscriber.id, subscriber.token_nonce)


def _activate(subscriber: Subscriber, now: datetime) -> None:
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.confirmed_at = now
    subscriber.hard_bounces = 0
    subscriber.updated_at = now


async def confirm(
    session: AsyncSession, *, link: TokenData, actor: Actor, now: datetime | None = None
) -> Confirmed:
    """Activate a pending subscriber; LinkNoLongerValid when the link no longer applies.

    A confirm link signed before the reader's last unsubscribe is stale, even if still
    within its 7 days: it cannot undo a later "no". One signed before the subscriber existed
    was meant for someone else.
    """
    now = now or utcnow()
    subscriber = await link_holder(
        session, link, statuses=(SubscriberStatus.PENDING, SubscriberStatus.ACTIVE), lock=True
    )
    issued_at = link.issued_at
    if issued_at is not None:
        for moment in (subscriber.unsubscribed_at, subscriber.created_at):
            if moment is not None and issued_at < moment.replace(microsecond=0):
                raise LinkNoLongerValid(NO_LONGER_VALID)
    if subscriber.status == SubscriberStatus.ACTIVE:
        return Confirmed(Confirmation.ALREADY_CONFIRMED, link_owner(subscriber))
    _activate(subscriber, now)
    if subscriber.email_key is not None:
        # Only an erasure's entry: a complaint's or an operator's is lifted by an operator alone.
        await session.execute(
            delete(Suppression).where(
                Suppression.email_hash == email_hash(subscriber.email_key),
                Suppression.reason == SuppressionReason.ERASED,
            )
        )
    audit.record(session, audit.CONFIRM, subscriber.id, actor, at=now)
    log.info("subscriber.confirmed", subscriber=subscriber.id)
    return Confirmed(Confirmation.CONFIRMED, link_owner(subscriber))


async def unsubscribe(
    session: AsyncSession,
    *,
    subscriber_id: int,
    newsletter_id: str | None,
    actor: Actor,
    one_click: bool = False,
    now: datetime | None = None,
) -> bool:
    """Unsubscribe from one newsletter or (None) from all; idempotent. True when something changed.

    Queued deliveries are skipped in the same transaction, so no edition still in the queue
    reaches the reader; the worker re-checks the status just before each SMTP transaction.
    """
    now = now or utcnow()
    subscriber = await locked(session, subscriber_id)
    if subscriber is None or subscriber.status == SubscriberStatus.ERASED:
        return False
    query = delete(Subscription).where(Subscription.subscriber_id == subscriber_id)
    if newsletter_id is not None:
        query = query.where(Subscription.newsletter_id == newsletter_id)
    removed = int(getattr(await session.execute(query), "rowcount", 0) or 0)
    remaining = len(await current_choices(session, subscriber_id)) if newsletter_id is not None else 0
    await skip_for(session, subscriber_id, newsletter_id if remaining else None, now=now)
    changed = removed > 0
    if remaining == 0 and subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = now
        changed = True
    if changed:
        # The delivery worker's re-check looks for subscribers updated since its last look.
        subscriber.updated_at = now
    if changed:
        detail = {"one_click": one_click, "remaining": remaining}
        audit.record(
            session, audit.UNSUBSCRIBE, subscriber_id, actor, newsletter_id=newsletter_id, detail=detail
        )
        log.info(
            "subscriber.unsubscribed", subscriber=subscriber_id, newsletter=newsletter_id, remaining=remaining
        )
    return changed


async def preferences_of(
    session: AsyncSession, *, link: TokenData, lock: bool = False
) -> tuple[Subscriber, Choices]:
    """The subscriber a preferences link belongs to, if its preferences may be changed, with
    its choices; else LinkNoLongerValid."""
    subscriber = await link_holder(
        session, link, statuses=(SubscriberStatus.PENDING, SubscriberStatus.ACTIVE), lock=lock
    )
    return subscriber, await current_choices(session, subscriber.id)


async def update_preferences(
    session: AsyncSession,
    *,
    subscriber_id: int,
    choices: Choices,
    timezone: str | None,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Replace the reader's newsletters and sections; no newsletter at all unsubscribes."""
    now = now or utcnow()
    subscriber = await locked(session, subscriber_id)
    if subscriber is None or subscriber.status not in (SubscriberStatus.PENDING, SubscriberStatus.ACTIVE):
        raise LinkNoLongerValid(NO_LONGER_VALID)
    if not choices:
        await unsubscribe(session, subscriber_id=subscriber_id, newsletter_id=None, actor=actor, now=now)
        return
    before = await current_choices(session, subscriber_id)
    await replace_subscriptions(session, subscriber_id, choices, now)
    for dropped in set(before) - set(choices):
        await skip_for(session, subscriber_id, dropped, now=now)
    subscriber.timezone = timezone
    subscriber.updated_at = now
    detail = {"newsletters": choices, "timezone": timezone}
    audit.record(session, audit.PREFERENCES, subscriber_id, actor, detail=detail, at=now)
    log.info("subscriber.preferences", subscriber=subscriber_id, newsletters=len(choices))
