"""Subscribers page by page, for the admin API and `subscribers list`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import Subscriber, Subscription
from newsletter.database.sections import parse_sections
from newsletter.errors import InvalidInput
from newsletter.states import SubscriberStatus
from newsletter.subscriptions.choices import Choices

MAX_PER_PAGE = 500


@dataclass(frozen=True)
class SubscriberView:
    id: int
    email: str | None
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    newsletters: Choices

    def as_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "newsletters": self.newsletters,
        }


def check_status(value: str | None, field: str = "status") -> str | None:
    if value in (None, ""):
        return None
    if value not in tuple(SubscriberStatus):
        raise InvalidInput(field, f"must be one of {', '.join(tuple(SubscriberStatus))}")
    return value


def _filtered(query: Select[Any], status: str | None) -> Select[Any]:
    # Erased subscribers keep a row without an address; only asked for by name.
    return query.where(
        Subscriber.status == status if status else Subscriber.status != SubscriberStatus.ERASED
    )


async def count_subscribers(session: AsyncSession, *, status: str | None = None) -> int:
    total = await session.scalar(_filtered(select(func.count()).select_from(Subscriber), status))
    return int(total or 0)


async def list_subscribers(
    session: AsyncSession, *, status: str | None = None, page: int = 1, per_page: int = 50
) -> list[SubscriberView]:
    """Oldest first; `page` counts from 1."""
    query = _filtered(select(Subscriber), status).order_by(Subscriber.id)
    subscribers = (await session.scalars(query.offset((page - 1) * per_page).limit(per_page))).all()
    return await _with_choices(session, subscribers)


async def iterate_subscribers(
    session: AsyncSession, *, status: str | None = None, batch: int = 1000
) -> AsyncIterator[SubscriberView]:
    """Every subscriber in keyset batches (constant memory, stable under inserts)."""
    last_id = 0
    while True:
        query = _filtered(select(Subscriber), status).where(Subscriber.id > last_id)
        subscribers = (await session.scalars(query.order_by(Subscriber.id).limit(batch))).all()
        if not subscribers:
            return
        for view in await _with_choices(session, subscribers):
            yield view
        last_id = subscribers[-1].id


async def _with_choices(session: AsyncSession, subscribers: Any) -> list[SubscriberView]:
    choices = await choices_of(session, [s.id for s in subscribers])
    return [
        SubscriberView(s.id, s.email, s.status, s.created_at, s.confirmed_at, choices.get(s.id, {}))
        for s in subscribers
    ]


async def choices_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, Choices]:
    """Each subscriber's newsletters and sections (none: absent from the answer)."""
    found: dict[int, Choices] = {}
    if not ids:
        return found
    rows = await session.execute(
        select(Subscription.subscriber_id, Subscription.newsletter_id, Subscription.sections)
        .where(Subscription.subscriber_id.in_(ids))
        .order_by(Subscription.subscriber_id, Subscription.newsletter_id)
    )
    for subscriber_id, newsletter_id, sections in rows.all():
        found.setdefault(subscriber_id, {})[newsletter_id] = parse_sections(sections)
    return found
