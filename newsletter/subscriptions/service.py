"""A reader's own actions: signup (double opt-in), confirm, unsubscribe, preferences.

Each function works inside the caller's transaction and never commits or sends mail:
what must be emailed becomes an outbox row that commits with the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import Settings
from newsletter.database.models import Subscriber, Subscription, Suppression, utcnow
from newsletter.delivery.ledger import skip_pending_for
from newsletter.delivery.outbox import enqueue_confirmation
from newsletter.editions.selection import canonical_sections
from newsletter.logs import get_logger
from newsletter.subscriptions import audit, status
from newsletter.subscriptions.addresses import Address, email_hash
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import Choices, choices_from_rows
from newsletter.subscriptions.tokens import LinkNoLongerValid

log = get_logger(__name__)

NO_LONGER_VALID = "this link is no longer valid"


@dataclass(frozen=True)
class SignupRequest:
    address: Address
    choices: Choices
    timezone: str | None = None


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already-confirmed"


async def find_by_key(session: AsyncSession, key: str, *, lock: bool = False) -> Subscriber | None:
    query = select(Subscriber).where(Subscriber.email_key == key)
    return await session.scalar(query.with_for_update() if lock else query)


async def locked(session: AsyncSession, subscriber_id: int) -> Subscriber | None:
    """The subscriber, row-locked on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises)."""
    query = select(Subscriber).where(Subscriber.id == subscriber_id).with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))


async def is_suppressed(session: AsyncSession, address: Address) -> bool:
    return await session.get(Suppression, address.hash) is not None


async def current_choices(session: AsyncSession, subscriber_id: int) -> Choices:
    rows = await session.execute(
        select(Subscription.newsletter_id, Subscription.sections).where(
            Subscription.subscriber_id == subscriber_id
        )
    )
    return choices_from_rows({newsletter_id: sections for newsletter_id, sections in rows.all()})


async def replace_subscriptions(
    session: AsyncSession, subscriber_id: int, choices: Choices, now: datetime, *, fresh: bool = False
) -> None:
    """`fresh`: a subscriber created in this transaction, with nothing to replace."""
    if not fresh:
        await session.execute(delete(Subscription).where(Subscription.subscriber_id == subscriber_id))
    for newsletter_id, sections in choices.items():
        session.add(
            Subscription(
                subscriber_id=subscriber_id,
                newsletter_id=newsletter_id,
                sections=canonical_sections(sections),
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()


async def signup(
    session: AsyncSession,
    *,
    settings: Settings,
    request: SignupRequest,
    actor: Actor,
    now: datetime | None = None,
) -> Subscriber:
    """Record a signup; whatever the address's history, the caller answers the same way.

    New, pending, unsubscribed or bounced: pending with a confirmation email owed (at most one
    per `confirmation_resend_minutes`), or active at once with single opt-in. An active
    subscriber is left exactly as it was, so nobody can change another reader's choices.
    A suppressed (erased) address always goes through double opt-in: only the reader's own
    confirmation lifts the suppression.
    """
    now = now or utcnow()
    subscriber, created = await _get_or_create(session, request.address, actor.source, now)
    if not created and subscriber.status == status.ACTIVE:
        audit.record(
            session, audit.SIGNUP, subscriber.id, actor, detail={"outcome": "already-active"}, at=now
        )
        log.info("subscriber.signup", subscriber=subscriber.id, outcome="already-active")
        return subscriber
    double_opt_in = settings.subscriptions.double_opt_in or await is_suppressed(session, request.address)
    await replace_subscriptions(session, subscriber.id, request.choices, now, fresh=created)
    subscriber.email = request.address.email
    subscriber.timezone = request.timezone or subscriber.timezone
    subscriber.updated_at = now
    if double_opt_in:
        subscriber.status = status.PENDING
        await _owe_confirmation(session, settings, subscriber, request.choices, now)
    else:
        _activate(subscriber, now)
    detail = {"newsletters": request.choices, "double_opt_in": double_opt_in, "new": created}
    audit.record(session, audit.SIGNUP, subscriber.id, actor, detail=detail, at=now)
    log.info("subscriber.signup", subscriber=subscriber.id, status=subscriber.status, new=created)
    return subscriber


async def _get_or_create(
    session: AsyncSession, address: Address, source: str, now: datetime
) -> tuple[Subscriber, bool]:
    existing = await find_by_key(session, address.key, lock=True)
    if existing is not None:
        return existing, False
    subscriber = Subscriber(
        email=address.email,
        email_key=address.key,
        status=status.PENDING,
        source=source,
        hard_bounces=0,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(subscriber)
    except IntegrityError:
        # A concurrent signup of the same address committed first (PostgreSQL): use its row.
        existing = await find_by_key(session, address.key, lock=True)
        if existing is None:
            raise
        return existing, False
    return subscriber, True


async def _owe_confirmation(
    session: AsyncSession, settings: Settings, subscriber: Subscriber, choices: Choices, now: datetime
) -> None:
    resend_after = timedelta(minutes=settings.subscriptions.confirmation_resend_minutes)
    last = subscriber.confirmation_sent_at
    if last is not None and now - last < resend_after:
        return
    newsletter_id = next(iter(choices)) if len(choices) == 1 else None
    await enqueue_confirmation(session, subscriber.id, newsletter_id, now=now)
    subscriber.confirmation_sent_at = now


def _activate(subscriber: Subscriber, now: datetime) -> None:
    subscriber.status = status.ACTIVE
    subscriber.confirmed_at = now
    subscriber.hard_bounces = 0
    subscriber.updated_at = now


async def confirm(
    session: AsyncSession,
    *,
    subscriber_id: int,
    issued_at: datetime | None,
    actor: Actor,
    now: datetime | None = None,
) -> Confirmation:
    """Activate a pending subscriber; LinkNoLongerValid when the link no longer applies.

    A confirm link signed before the reader's last unsubscribe is stale, even if still
    within its 7 days: it cannot undo a later "no".
    """
    now = now or utcnow()
    subscriber = await locked(session, subscriber_id)
    if subscriber is None or subscriber.status not in (status.PENDING, status.ACTIVE):
        raise LinkNoLongerValid(NO_LONGER_VALID)
    unsubscribed_at = subscriber.unsubscribed_at
    if (
        issued_at is not None
        and unsubscribed_at is not None
        and issued_at < unsubscribed_at.replace(microsecond=0)
    ):
        raise LinkNoLongerValid(NO_LONGER_VALID)
    if subscriber.status == status.ACTIVE:
        return Confirmation.ALREADY_CONFIRMED
    _activate(subscriber, now)
    if subscriber.email_key is not None:
        await session.execute(
            delete(Suppression).where(Suppression.email_hash == email_hash(subscriber.email_key))
        )
    audit.record(session, audit.CONFIRM, subscriber.id, actor, at=now)
    log.info("subscriber.confirmed", subscriber=subscriber.id)
    return Confirmation.CONFIRMED


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
    if subscriber is None or subscriber.status == status.ERASED:
        return False
    query = delete(Subscription).where(Subscription.subscriber_id == subscriber_id)
    if newsletter_id is not None:
        query = query.where(Subscription.newsletter_id == newsletter_id)
    removed = int(getattr(await session.execute(query), "rowcount", 0) or 0)
    remaining = len(await current_choices(session, subscriber_id)) if newsletter_id is not None else 0
    await skip_pending_for(session, subscriber_id, newsletter_id if remaining else None, now=now)
    changed = removed > 0
    if remaining == 0 and subscriber.status != status.UNSUBSCRIBED:
        subscriber.status = status.UNSUBSCRIBED
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


async def preferences_of(session: AsyncSession, *, subscriber_id: int) -> tuple[Subscriber, Choices]:
    """A subscriber whose preferences may be changed, with its choices; else LinkNoLongerValid."""
    subscriber = await session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status not in (status.PENDING, status.ACTIVE):
        raise LinkNoLongerValid(NO_LONGER_VALID)
    return subscriber, await current_choices(session, subscriber_id)


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
    if subscriber is None or subscriber.status not in (status.PENDING, status.ACTIVE):
        raise LinkNoLongerValid(NO_LONGER_VALID)
    if not choices:
        await unsubscribe(session, subscriber_id=subscriber_id, newsletter_id=None, actor=actor, now=now)
        return
    before = await current_choices(session, subscriber_id)
    await replace_subscriptions(session, subscriber_id, choices, now)
    for dropped in set(before) - set(choices):
        await skip_pending_for(session, subscriber_id, dropped, now=now)
    subscriber.timezone = timezone
    subscriber.updated_at = now
    detail = {"newsletters": choices, "timezone": timezone}
    audit.record(session, audit.PREFERENCES, subscriber_id, actor, detail=detail, at=now)
    log.info("subscriber.preferences", subscriber=subscriber_id, newsletters=len(choices))
