"""A reader's signup (double opt-in): the web's hottest write, as a handful of Core statements.

Works inside the caller's transaction and never commits or sends mail: the confirmation owed
becomes an outbox row that commits with the signup. The statements run on a synchronous
connection (`sign_up`), so a caller with a thread of its own (the ledger thread) runs the whole
transaction in one hop; `signup` runs them inside an async caller's transaction. On PostgreSQL a
new address's signup can also be one statement (`sign_up_new`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from newsletter.config import Settings
from newsletter.database.models import Event, Subscriber, Subscription, Suppression, utcnow
from newsletter.database.sections import canonical_sections
from newsletter.database.upsert import insert_for
from newsletter.delivery.store import LEDGER, confirmation_row
from newsletter.logs import get_logger
from newsletter.states import BLOCKING_SUPPRESSIONS, SubscriberStatus
from newsletter.subscriptions import audit, oneshot
from newsletter.subscriptions.addresses import Address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import Choices, choices_from_rows

log = get_logger(__name__)


@dataclass(frozen=True)
class SignupRequest:
    address: Address
    choices: Choices
    timezone: str | None = None


async def current_choices(session: AsyncSession, subscriber_id: int) -> Choices:
    rows = await session.execute(
        select(Subscription.newsletter_id, Subscription.sections).where(
            Subscription.subscriber_id == subscriber_id
        )
    )
    return choices_from_rows({newsletter_id: sections for newsletter_id, sections in rows.all()})


async def replace_subscriptions(
    db: AsyncSession | AsyncConnection, subscriber_id: int, choices: Choices, now: datetime
) -> None:
    await db.execute(delete(Subscription).where(Subscription.subscriber_id == subscriber_id))
    await insert_subscriptions(db, subscriber_id, choices, now)


async def insert_subscriptions(
    db: AsyncSession | AsyncConnection, subscriber_id: int, choices: Choices, now: datetime
) -> None:
    rows = subscription_rows(subscriber_id, choices, now)
    if rows:
        await db.execute(insert(Subscription), rows)


def subscription_rows(subscriber_id: int, choices: Choices, now: datetime) -> list[dict[str, object]]:
    return [
        {
            "subscriber_id": subscriber_id,
            "newsletter_id": newsletter_id,
            "sections": canonical_sections(sections),
            "created_at": now,
            "updated_at": now,
        }
        for newsletter_id, sections in choices.items()
    ]


@dataclass(frozen=True)
class SignupOutcome:
    subscriber_id: int
    status: str
    new: bool


async def signup(
    session: AsyncSession,
    *,
    settings: Settings,
    request: SignupRequest,
    actor: Actor,
    now: datetime | None = None,
) -> SignupOutcome:
    """Record a signup; whatever the address's history, the caller answers the same way.

    New, pending, unsubscribed or bounced: pending with a confirmation email owed (at most one
    per `confirmation_resend_minutes`), or active at once with single opt-in. An active
    subscriber is left exactly as it was, so nobody can change another reader's choices.
    An erased address always goes through double opt-in: only the reader's own confirmation
    lifts its suppression. An address suppressed after a complaint or by an operator is
    answered the same way, and nothing is written or sent.

    The web's hottest write, so a handful of Core statements rather than the ORM's unit of
    work (which cost three times as much CPU per signup).
    """
    conn = await session.connection()
    return await conn.run_sync(
        lambda sync: sign_up(sync, settings=settings, request=request, actor=actor, now=now)
    )


def sign_up(
    conn: Connection,
    *,
    settings: Settings,
    request: SignupRequest,
    actor: Actor,
    now: datetime | None = None,
) -> SignupOutcome:
    """`signup` on a synchronous connection, inside its transaction."""
    now = now or utcnow()
    for _ in range(SIGNUP_ATTEMPTS):
        outcome = _signup_once(conn, settings, request, actor, now)
        if outcome is not None:
            return outcome
    raise RuntimeError(f"signup: the address changed hands {SIGNUP_ATTEMPTS} times in one signup")


def sign_up_new(
    conn: Connection,
    *,
    settings: Settings,
    request: SignupRequest,
    actor: Actor,
    now: datetime | None = None,
) -> SignupOutcome | None:
    """PostgreSQL, on a connection in autocommit: the signup of an address never seen and not
    suppressed, in one statement (see newsletter.subscriptions.oneshot). None, and nothing
    written, for any other address: `sign_up` then decides in a transaction."""
    if conn.dialect.name != "postgresql" or not request.choices:
        return None
    now = now or utcnow()
    double_opt_in = settings.subscriptions.double_opt_in
    status = SubscriberStatus.PENDING if double_opt_in else SubscriberStatus.ACTIVE
    detail = _signup_detail(request, SignupOutcome(0, status, new=True), double_opt_in)
    owed = _confirmation_newsletter(request.choices)
    new_id = oneshot.insert_new(
        conn,
        email_hash=request.address.hash,
        subscriber=_new_subscriber(request, actor.source, now, double_opt_in=double_opt_in),
        subscriptions=subscription_rows(0, request.choices, now),
        # The outbox row LEDGER.enqueue_confirmations writes: the same here.
        messages=[confirmation_row(0, owed, now)] if double_opt_in else [],
        event=audit.event_row(audit.SIGNUP, None, actor, detail=detail, at=now),
    )
    if new_id is None:
        return None
    outcome = SignupOutcome(new_id, status, new=True)
    _log_signup(outcome)
    return outcome


# An erasure committing between a signup's two statements frees the address: the signup starts
# over (and then sees the erasure's suppression entry). Twice in a row would be a third party.
SIGNUP_ATTEMPTS = 3
SUPPRESSED = "suppressed"


def _signup_once(
    conn: Connection, settings: Settings, request: SignupRequest, actor: Actor, now: datetime
) -> SignupOutcome | None:
    """One try; None when the address was freed (erased) between its statements."""
    suppressed = conn.scalar(_SUPPRESSION, {"hash": request.address.hash})
    if suppressed in BLOCKING_SUPPRESSIONS:
        # A complaint or an operator's entry: answered like any signup, and nothing is sent.
        log.info("subscriber.signup_suppressed", reason=suppressed)
        return SignupOutcome(0, SUPPRESSED, new=False)
    double_opt_in = settings.subscriptions.double_opt_in or suppressed is not None
    subscriber_id = _insert_if_new(conn, request, actor.source, now, double_opt_in=double_opt_in)
    if subscriber_id is None:
        return _signup_again(conn, settings, request, actor, now, double_opt_in=double_opt_in)
    _subscribe(conn, subscriber_id, request.choices, now)
    if double_opt_in:
        LEDGER.enqueue_confirmations(
            conn, [(subscriber_id, _confirmation_newsletter(request.choices))], now=now
        )
    outcome = SignupOutcome(
        subscriber_id, SubscriberStatus.PENDING if double_opt_in else SubscriberStatus.ACTIVE, new=True
    )
    _record_signup(conn, outcome, actor, now, _signup_detail(request, outcome, double_opt_in))
    return outcome


# Built once: building a statement (and its cache key) per signup cost as much as running it.
_SUPPRESSION = select(Suppression.reason).where(Suppression.email_hash == bindparam("hash"))
_KNOWN = (
    select(Subscriber.id, Subscriber.status, Subscriber.timezone, Subscriber.confirmation_sent_at)
    .where(Subscriber.email_key == bindparam("key"))
    .with_for_update()
)
_INSERT_EVENT = insert(Event)
_INSERT_SUBSCRIPTIONS = insert(Subscription)


@functools.cache
def _insert_unless_known(dialect: str) -> ReturningInsert[int]:
    statement = insert_for(dialect, Subscriber).on_conflict_do_nothing(index_elements=["email_key"])
    return statement.returning(Subscriber.id)


def _subscribe(conn: Connection, subscriber_id: int, choices: Choices, now: datetime) -> None:
    rows = subscription_rows(subscriber_id, choices, now)
    if rows:
        conn.execute(_INSERT_SUBSCRIPTIONS, rows)


def _insert_if_new(
    conn: Connection, request: SignupRequest, source: str, now: datetime, *, double_opt_in: bool
) -> int | None:
    """The new subscriber's id; None when the address is already known (or a concurrent signup of
    it committed first: PostgreSQL waits for that transaction, then inserts nothing)."""
    values = _new_subscriber(request, source, now, double_opt_in=double_opt_in)
    new_id: int | None = conn.scalar(_insert_unless_known(conn.dialect.name), values)
    return new_id


def _new_subscriber(
    request: SignupRequest, source: str, now: datetime, *, double_opt_in: bool
) -> dict[str, object]:
    return {
        "email": request.address.email,
        "email_key": request.address.key,
        "timezone": request.timezone,
        "source": source,
        "hard_bounces": 0,
        "created_at": now,
        "updated_at": now,
        **(_pending(now) if double_opt_in else _active(now)),
    }


def _signup_again(
    conn: Connection,
    settings: Settings,
    request: SignupRequest,
    actor: Actor,
    now: datetime,
    *,
    double_opt_in: bool,
) -> SignupOutcome | None:
    known = conn.execute(_KNOWN, {"key": request.address.key}).one_or_none()
    if known is None:  # erased since the INSERT found it (PostgreSQL; SQLite serialises writers)
        return None
    if known.status == SubscriberStatus.ACTIVE:
        outcome = SignupOutcome(known.id, SubscriberStatus.ACTIVE, new=False)
        _record_signup(conn, outcome, actor, now, {"outcome": "already-active"})
        return outcome
    conn.execute(delete(Subscription).where(Subscription.subscriber_id == known.id))
    _subscribe(conn, known.id, request.choices, now)
    changes: dict[str, object] = {
        "email": request.address.email,
        "timezone": request.timezone or known.timezone,
        "updated_at": now,
    }
    if not double_opt_in:
        changes.update(_active(now))
    elif _may_resend(settings, known.confirmation_sent_at, now):
        changes.update(_pending(now))
        newsletter_id = _confirmation_newsletter(request.choices)
        LEDGER.enqueue_confirmations(conn, [(known.id, newsletter_id)], now=now)
    else:
        changes["status"] = SubscriberStatus.PENDING
    conn.execute(update(Subscriber).where(Subscriber.id == known.id).values(changes))
    outcome = SignupOutcome(known.id, str(changes["status"]), new=False)
    _record_signup(conn, outcome, actor, now, _signup_detail(request, outcome, double_opt_in))
    return outcome


def _pending(now: datetime) -> dict[str, object]:
    """A pending subscriber that is sent its confirmation now."""
    return {"status": SubscriberStatus.PENDING, "confirmation_sent_at": now}


def _active(now: datetime) -> dict[str, object]:
    return {"status": SubscriberStatus.ACTIVE, "confirmed_at": now, "hard_bounces": 0}


def _may_resend(settings: Settings, last_sent: datetime | None, now: datetime) -> bool:
    resend_after = timedelta(minutes=settings.subscriptions.confirmation_resend_minutes)
    return last_sent is None or now - last_sent >= resend_after


def _confirmation_newsletter(choices: Choices) -> str | None:
    """The newsletter a confirmation email speaks of; None (the site) for several."""
    return next(iter(choices)) if len(choices) == 1 else None


def _signup_detail(request: SignupRequest, outcome: SignupOutcome, double_opt_in: bool) -> dict[str, object]:
    return {"newsletters": request.choices, "double_opt_in": double_opt_in, "new": outcome.new}


def _record_signup(
    conn: Connection, outcome: SignupOutcome, actor: Actor, now: datetime, detail: dict[str, object]
) -> None:
    event = audit.event_row(audit.SIGNUP, outcome.subscriber_id, actor, detail=detail, at=now)
    conn.execute(_INSERT_EVENT, event)
    _log_signup(outcome)


def _log_signup(outcome: SignupOutcome) -> None:
    log.info("subscriber.signup", subscriber=outcome.subscriber_id, status=outcome.status, new=outcome.new)
