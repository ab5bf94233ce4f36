"""What the console's subscribers pages read: a page of subscribers (newest first, by address
prefix and status) and one subscriber's whole record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, UnaryExpression, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import BounceEvent, Delivery, Edition, Event, Subscriber
from newsletter.errors import NotFound
from newsletter.states import SubscriberStatus
from newsletter.subscriptions.choices import Choices
from newsletter.subscriptions.listing import SubscriberView, choices_of

PAGE = 50
HISTORY = 50
CONSENT_EVENTS = 100
MAX_CODE_POINT = chr(0x10FFFF)
# A prefix matching at most this many addresses is searched through the email_key index;
# for a commoner one, a page searches at most WINDOW ids (newest first) for its matches.
FEW_MATCHES = 2000
WINDOW = 50_000


@dataclass(frozen=True)
class Page:
    rows: list[SubscriberView]
    older: int | None  # the `before` of the next page, if there is one
    # Set when a search stopped at this id short of a full page: older ones come next.
    searched_to: int | None = None


@dataclass(frozen=True)
class ConsentEvent:
    at: datetime
    kind: str
    newsletter_id: str | None
    ip: str | None
    user_agent: str | None
    detail: str


@dataclass(frozen=True)
class DeliveryLine:
    edition_id: int
    newsletter_id: str
    edition_date: date
    sequence: int
    status: str
    attempts: int
    code: int | None
    reply: str | None
    at: datetime | None


@dataclass(frozen=True)
class Record:
    subscriber: Subscriber
    choices: Choices
    events: list[ConsentEvent]
    deliveries: list[DeliveryLine]
    bounces: list[BounceEvent]


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """[low, high) holding exactly the strings that start with `prefix`, in code-point order
    (SQLite's and PostgreSQL's "C" collation): a range the email_key index answers."""
    stem = prefix.rstrip(MAX_CODE_POINT)
    if not stem:
        return prefix, None
    return prefix, stem[:-1] + chr(ord(stem[-1]) + 1)


async def page(
    context: AppContext, *, prefix: str = "", status: str | None = None, before: int | None = None
) -> Page:
    """Subscribers newest first, PAGE at a time below the id `before` (keyset pagination)."""
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        query, floor = _listing(status, before), None
        if prefix:
            query, floor = await _matching(session, query, prefix, status, before)
        found = list((await session.scalars(query)).all())
        shown = found[:PAGE]
        chosen = await choices_of(session, [s.id for s in shown])
    rows = [
        SubscriberView(s.id, s.email, s.status, s.created_at, s.confirmed_at, chosen.get(s.id, {}))
        for s in shown
    ]
    if len(found) > PAGE:
        return Page(rows, shown[-1].id)
    if floor is not None and floor > 1:
        return Page(rows, floor, searched_to=floor)
    return Page(rows, None)


def _listing(status: str | None, before: int | None) -> Select[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id.desc()).limit(PAGE + 1)
    # Erased subscribers keep a row without an address; shown only when asked for.
    query = query.where(
        Subscriber.status == status if status else Subscriber.status != SubscriberStatus.ERASED
    )
    return query if before is None else query.where(Subscriber.id < before)


async def _matching(
    session: AsyncSession, query: Select[Subscriber], prefix: str, status: str | None, before: int | None
) -> tuple[Select[Subscriber], int | None]:
    """`query` narrowed to addresses starting with `prefix`, and the lowest id it searches.

    A rare prefix or status (at most FEW_MATCHES): its ids, read from its index. Both common:
    the ids are walked down from `before`, WINDOW of them a page at most, since the index
    would hand over every match only for all but PAGE of them to be sorted away.
    """
    # Also under a linguistic collation (where the range may hold more): true prefixes only.
    query = query.where(func.substr(Subscriber.email_key, 1, len(prefix)) == prefix)
    low, high = prefix_bounds(prefix)
    probes = [select(Subscriber.id).where(Subscriber.email_key >= low)]
    if high is not None:
        probes[0] = probes[0].where(Subscriber.email_key < high)
    if status:
        probes.append(select(Subscriber.id).where(Subscriber.status == status))
    for probe in probes:
        few = list((await session.scalars(probe.limit(FEW_MATCHES + 1))).all())
        if len(few) <= FEW_MATCHES:
            return query.where(Subscriber.id.in_(few)), None
    top = before or int(await session.scalar(select(func.max(Subscriber.id))) or 0) + 1
    floor = max(1, top - WINDOW)
    return query.where(Subscriber.id >= floor), floor


def _newest(column: QueryableAttribute[int]) -> UnaryExpression[int]:
    # `id + 0` is no longer the primary key to a planner, so it cannot walk the whole table's
    # key looking for one reader's few rows (PostgreSQL did, for a LIMIT, when there were none):
    # it reads them through the subscriber_id index and sorts them.
    return (column + 0).desc()


async def find(context: AppContext, subscriber_id: int) -> Subscriber:
    """The subscriber, or NotFound."""
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        return await _stored(session, subscriber_id)


async def _stored(session: AsyncSession, subscriber_id: int) -> Subscriber:
    subscriber = await session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"no subscriber {subscriber_id}")
    return subscriber


async def record(context: AppContext, subscriber_id: int) -> Record:
    """Everything the console shows of one subscriber; NotFound if there is no such id."""
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        subscriber = await _stored(session, subscriber_id)
        chosen = await choices_of(session, [subscriber_id])
        return Record(
            subscriber,
            chosen.get(subscriber_id, {}),
            await _events(session, subscriber_id),
            await _deliveries(session, subscriber_id),
            await _bounces(session, subscriber_id),
        )


async def _events(session: AsyncSession, subscriber_id: int) -> list[ConsentEvent]:
    query = (
        select(Event)
        .where(Event.subscriber_id == subscriber_id)
        .order_by(_newest(Event.id))
        .limit(CONSENT_EVENTS)
    )
    return [
        ConsentEvent(e.at, e.kind, e.newsletter_id, e.ip, e.user_agent, describe(e.detail))
        for e in (await session.scalars(query)).all()
    ]


def describe(detail: str | None) -> str:
    """An event's JSON detail as `key: value` pairs (nested choices by newsletter id)."""
    if not detail:
        return ""
    try:
        data: Any = json.loads(detail)
    except ValueError:
        return detail
    if not isinstance(data, dict):
        return detail
    return "; ".join(f"{key}: {_plain(value)}" for key, value in data.items())


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} ({', '.join(map(str, v))})" if v else str(k) for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


async def _deliveries(session: AsyncSession, subscriber_id: int) -> list[DeliveryLine]:
    query = (
        select(
            Delivery.edition_id,
            Edition.newsletter_id,
            Edition.edition_date,
            Edition.sequence,
            Delivery.status,
            Delivery.attempts,
            Delivery.last_code,
            Delivery.last_reply,
            func.coalesce(Delivery.sent_at, Delivery.updated_at),
        )
        .join(Edition, Edition.id == Delivery.edition_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(_newest(Delivery.id))
        .limit(HISTORY)
    )
    return [DeliveryLine(*row) for row in (await session.execute(query)).all()]


async def _bounces(session: AsyncSession, subscriber_id: int) -> list[BounceEvent]:
    query = (
        select(BounceEvent)
        .where(BounceEvent.subscriber_id == subscriber_id)
        .order_by(_newest(BounceEvent.id))
        .limit(HISTORY)
    )
    return list((await session.scalars(query)).all())
