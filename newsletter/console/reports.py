"""What the console's reports read that the API's queries do not give: pages by keyset (the API
pages by offset), suppressions by address prefix, tracked editions, and unique readers per section."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.bounces.queries import BounceView
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Article, BounceEvent, Click, Edition, Subscriber, Suppression
from newsletter.engagement.filtering import BUCKETS
from newsletter.errors import InvalidInput
from newsletter.rendering.content import UNSECTIONED
from newsletter.subscriptions.suppressions import SuppressionEntry

# Rows a page of a list shows.
PAGE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(\d{1,18})-([0-9a-f]{64})")


@dataclass(frozen=True)
class Returned:
    """A bounce or complaint, with the address: the one reported, else the reader's."""

    event: BounceView
    address: str | None


@dataclass(frozen=True)
class TrackedEdition:
    id: int
    newsletter: str
    date: date
    sequence: int
    status: str
    clicks: int


async def bounces(context: AppContext, *, kind: str | None, before: int | None, limit: int) -> list[Returned]:
    """Newest first, a page below the id `before`."""
    query = (
        select(BounceEvent, Subscriber.email)
        .outerjoin(Subscriber, Subscriber.id == BounceEvent.subscriber_id)
        .order_by(BounceEvent.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(BounceEvent.kind == kind)
    if before is not None:
        query = query.where(BounceEvent.id < before)
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        rows = (await session.execute(query)).all()
    names = [f.name for f in fields(BounceView)]
    return [
        Returned(BounceView(**{n: getattr(row, n) for n in names}), row.recipient or email)
        for row, email in rows
    ]


def cursor_of(entry: SuppressionEntry) -> str:
    """Where the next page of suppressions starts: the entry's time and hash, URL-safe."""
    micros = (entry.created_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{entry.email_hash}"


def parse_cursor(text: str) -> tuple[datetime, str]:
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise InvalidInput("before", "is not a page of this list: follow the links on the page")
    return EPOCH + timedelta(microseconds=int(found.group(1))), found.group(2)


async def suppressions(
    context: AppContext, *, prefix: str, before: str | None, limit: int
) -> list[SuppressionEntry]:
    """Newest first (then by hash), a page after the cursor `before`; only addresses that start
    with `prefix` when one is given (an erased entry has none)."""
    query = select(Suppression).order_by(Suppression.created_at.desc(), Suppression.email_hash.desc())
    if prefix:
        query = query.where(Suppression.email.startswith(prefix.lower(), autoescape=True))
    if before is not None:
        at, key = parse_cursor(before)
        query = query.where(
            or_(Suppression.created_at < at, and_(Suppression.created_at == at, Suppression.email_hash < key))
        )
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        rows = await session.scalars(query.limit(limit))
        return [SuppressionEntry(r.email, r.email_hash, r.reason, r.created_at) for r in rows]


async def tracked_editions(context: AppContext, *, before: int | None, limit: int) -> list[TrackedEdition]:
    """Editions of the newsletters that track clicks, newest first, with their readers' clicks."""
    tracked = [n.id for n in context.settings.newsletters if n.tracking != "off"]
    if not tracked:
        return []
    query = select(Edition).where(Edition.newsletter_id.in_(tracked)).order_by(Edition.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Edition.id < before)
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        editions = list((await session.scalars(query)).all())
        clicks = await _clicks_per_edition(session, [e.id for e in editions])
    return [
        TrackedEdition(e.id, e.newsletter_id, e.edition_date, e.sequence, e.status, clicks.get(e.id, 0))
        for e in editions
    ]


async def _clicks_per_edition(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Click.edition_id, func.count())
        .where(Click.edition_id.in_(ids), Click.kind == "click", Click.filtered.is_(None))
        .group_by(Click.edition_id)
    )
    return {edition_id: int(count) for edition_id, count in rows.all()}


async def section_readers(context: AppContext, edition_id: int) -> dict[str, int]:
    """Distinct readers who clicked in each section (per-reader tracking: a reader clicking two
    articles of a section counts once, so the articles' figures cannot be summed)."""
    query = (
        select(Article.section, func.count(distinct(Click.delivery_id)))
        .select_from(Click)
        .outerjoin(Article, Article.id == Click.article_id)
        .where(Click.edition_id == edition_id, Click.kind == "click", Click.filtered.is_(None))
        .group_by(Article.section)
    )
    async with context.db.session() as session:
        await session.connection(execution_options=READ_ONLY)
        rows = (await session.execute(query)).all()
    found: dict[str, int] = {}
    for section, readers in rows:
        # Deleted articles and unsectioned ones share a name in edition_stats: so here.
        found[section or UNSECTIONED] = found.get(section or UNSECTIONED, 0) + int(readers)
    return found


def timing_rows(timing: dict[str, int]) -> list[tuple[str, int]]:
    """Every timing bucket, in order, named by its span ("30 s – 1 min"), with its clicks."""
    bounds = [*BUCKETS, None]
    return [
        (_span(low, high), timing.get(str(low), 0)) for low, high in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _span(low: int | None, high: int | None) -> str:
    if high is None:
        return f"{_duration(low or 0)} or later"
    return f"{_duration(low or 0)} – {_duration(high)}"


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds} s"
