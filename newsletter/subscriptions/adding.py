"""Subscribers added by an operator (admin API, CLI, CSV import), a batch at a time.

Set-based: one query for suppressions, one for existing subscribers, bulk inserts and
updates, so a 100,000-row import costs a few hundred statements, not a million.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import Settings
from newsletter.database.models import Event, Subscriber, Subscription, Suppression, utcnow
from newsletter.database.sections import canonical_sections
from newsletter.delivery.store import enqueue_confirmations, skip_for
from newsletter.states import REFUSING, SubscriberStatus
from newsletter.subscriptions import audit
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import Choices, default_newsletters
from newsletter.subscriptions.forms import NewSubscriber


class Outcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    SUPPRESSED = "suppressed"
    INVALID = "invalid"


@dataclass(frozen=True)
class EntryResult:
    outcome: Outcome
    reason: str | None = None


@dataclass
class _Planned:
    """A subscriber as the batch will leave it."""

    id: int | None  # None: to be inserted
    email: str
    status: str
    timezone: str | None
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    choices: Choices | None = None  # None: subscriptions left as they are
    owes_confirmation: bool = False
    newly_unsubscribed: bool = False
    changed: bool = False


async def add_batch(
    session: AsyncSession,
    *,
    settings: Settings,
    entries: Sequence[NewSubscriber],
    actor: Actor,
    now: datetime | None = None,
) -> list[EntryResult]:
    """Add or update each entry; one result per entry, in order. Part of the caller's transaction.

    Refused ("suppressed"): an erased address (only its owner's own signup brings it back) and
    a subscriber who unsubscribed or bounced. A later entry for the same address updates the
    earlier one. Without `confirmed`, a new subscriber is pending and gets a confirmation
    email (with double opt-in on).
    """
    now = now or utcnow()
    suppressed = await _suppressed(session, {e.address.hash for e in entries})
    planned = await _existing(session, {e.address.key for e in entries})
    results = [_plan(settings, planned, suppressed, entry, now) for entry in entries]
    await _write(session, settings, planned, actor, now)
    return results


async def _suppressed(session: AsyncSession, hashes: set[str]) -> set[str]:
    rows = await session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes)))
    return set(rows.all())


async def _existing(session: AsyncSession, keys: set[str]) -> dict[str, _Planned]:
    rows = await session.execute(
        select(
            Subscriber.id,
            Subscriber.email_key,
            Subscriber.email,
            Subscriber.status,
            Subscriber.timezone,
            Subscriber.confirmed_at,
            Subscriber.unsubscribed_at,
        ).where(Subscriber.email_key.in_(keys))
    )
    return {
        str(key): _Planned(id, str(email), state, timezone, confirmed_at, unsubscribed_at)
        for id, key, email, state, timezone, confirmed_at, unsubscribed_at in rows.all()
    }


def _plan(
    settings: Settings,
    planned: dict[str, _Planned],
    suppressed: set[str],
    entry: NewSubscriber,
    now: datetime,
) -> EntryResult:
    key = entry.address.key
    if entry.address.hash in suppressed:
        return EntryResult(Outcome.SUPPRESSED, "erased at the reader's request")
    current = planned.get(key)
    if current is None:
        planned[key] = _new(settings, entry, now)
        return EntryResult(Outcome.ADDED)
    if current.status in REFUSING and not entry.unsubscribed:
        return EntryResult(Outcome.SUPPRESSED, f"{current.status}: only the reader can sign up again")
    _update(current, entry, now)
    return EntryResult(Outcome.UPDATED)


def _new(settings: Settings, entry: NewSubscriber, now: datetime) -> _Planned:
    choices = entry.choices or {n: [] for n in default_newsletters(settings)}
    if entry.unsubscribed:
        return _Planned(
            None,
            entry.address.email,
            SubscriberStatus.UNSUBSCRIBED,
            entry.timezone,
            None,
            now,
            {},
            changed=True,
        )
    if entry.confirmed or not settings.subscriptions.double_opt_in:
        return _Planned(
            None,
            entry.address.email,
            SubscriberStatus.ACTIVE,
            entry.timezone,
            now,
            None,
            choices,
            changed=True,
        )
    return _Planned(
        None,
        entry.address.email,
        SubscriberStatus.PENDING,
        entry.timezone,
        None,
        None,
        choices,
        True,
        changed=True,
    )


def _update(current: _Planned, entry: NewSubscriber, now: datetime) -> None:
    current.changed = True
    if entry.timezone:
        current.timezone = entry.timezone
    if entry.unsubscribed:
        if current.status != SubscriberStatus.UNSUBSCRIBED:
            current.status, current.unsubscribed_at = SubscriberStatus.UNSUBSCRIBED, now
            current.newly_unsubscribed = current.id is not None
        current.choices, current.owes_confirmation = {}, False
        return
    if entry.choices is not None:
        current.choices = entry.choices
    if entry.confirmed and current.status == SubscriberStatus.PENDING:
        current.status, current.confirmed_at, current.owes_confirmation = SubscriberStatus.ACTIVE, now, False


async def _write(
    session: AsyncSession, settings: Settings, planned: dict[str, _Planned], actor: Actor, now: datetime
) -> None:
    new = {key: p for key, p in planned.items() if p.changed and p.id is None}
    existing = [p for p in planned.values() if p.changed and p.id is not None]
    await _update_existing(session, existing, now)
    await _insert_new(session, actor, new, now)
    changed = existing + list(new.values())
    await _write_subscriptions(session, existing, changed, now)
    await enqueue_confirmations(
        session,
        [(p.id, _confirmation_newsletter(p)) for p in changed if p.owes_confirmation and p.id],
        now=now,
    )
    if changed:
        await session.execute(insert(Event), [_event(p, actor, now) for p in changed])
    for p in existing:
        if p.newly_unsubscribed:
            assert p.id is not None
            await skip_for(session, p.id, None, now=now)


async def _insert_new(session: AsyncSession, actor: Actor, new: dict[str, _Planned], now: datetime) -> None:
    if not new:
        return
    rows: list[dict[str, Any]] = [
        {
            "email": p.email,
            "email_key": key,
            "status": p.status,
            "timezone": p.timezone,
            "source": actor.source,
            "hard_bounces": 0,
            "created_at": now,
            "updated_at": now,
            "confirmed_at": p.confirmed_at,
            "unsubscribed_at": p.unsubscribed_at,
            "confirmation_sent_at": now if p.owes_confirmation else None,
        }
        for key, p in new.items()
    ]
    inserted = await session.execute(insert(Subscriber).returning(Subscriber.id, Subscriber.email_key), rows)
    for subscriber_id, key in inserted.all():
        new[str(key)].id = int(subscriber_id)


async def _update_existing(session: AsyncSession, existing: list[_Planned], now: datetime) -> None:
    rows = [
        {
            "id": p.id,
            "status": p.status,
            "timezone": p.timezone,
            "confirmed_at": p.confirmed_at,
            "unsubscribed_at": p.unsubscribed_at,
            "updated_at": now,
        }
        for p in existing
    ]
    if rows:
        await session.execute(update(Subscriber), rows)


async def _write_subscriptions(
    session: AsyncSession, existing: list[_Planned], changed: list[_Planned], now: datetime
) -> None:
    ids = [p.id for p in existing if p.choices is not None]
    if ids:
        await session.execute(delete(Subscription).where(Subscription.subscriber_id.in_(ids)))
    rows = [
        {
            "subscriber_id": p.id,
            "newsletter_id": newsletter_id,
            "sections": canonical_sections(sections),
            "created_at": now,
            "updated_at": now,
        }
        for p in changed
        if p.choices is not None
        for newsletter_id, sections in p.choices.items()
    ]
    if rows:
        await session.execute(insert(Subscription), rows)


def _confirmation_newsletter(p: _Planned) -> str | None:
    choices = p.choices or {}
    return next(iter(choices)) if len(choices) == 1 else None


def _event(p: _Planned, actor: Actor, now: datetime) -> dict[str, Any]:
    detail: dict[str, Any] = {"status": p.status}
    if p.choices is not None:
        detail["newsletters"] = p.choices
    return audit.event_row(audit.IMPORT, p.id, actor, detail=detail, at=now)
