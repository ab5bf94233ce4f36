"""What operators read back: bounce events, newest first, and counts per edition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.bounces.incoming import BounceSource
from newsletter.database.models import BounceEvent
from newsletter.errors import InvalidInput

KINDS = ("hard", "soft", "complaint", "unknown")
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class BounceView:
    id: int
    received_at: datetime
    source: str
    kind: str
    outcome: str
    recipient: str | None
    status: str | None
    diagnostic: str | None
    feedback_type: str | None
    matched_by: str | None
    subscriber_id: int | None
    edition_id: int | None
    delivery_id: int | None

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "received_at": self.received_at.isoformat()}


def check_kind(kind: str | None, *, field: str = "type") -> str | None:
    if kind is not None and kind not in KINDS:
        raise InvalidInput(field, f"must be one of {', '.join(KINDS)}")
    return kind


def check_source(source: str | None, *, field: str = "source") -> str | None:
    known = [s.value for s in BounceSource]
    if source is not None and source not in known:
        raise InvalidInput(field, f"must be one of {', '.join(known)}")
    return source


async def list_bounces(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    kind: str | None = None,
    source: str | None = None,
    edition_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[BounceView]:
    query = select(BounceEvent).order_by(BounceEvent.received_at.desc(), BounceEvent.id.desc())
    if since is not None:
        query = query.where(BounceEvent.received_at >= since)
    if kind is not None:
        query = query.where(BounceEvent.kind == kind)
    if source is not None:
        query = query.where(BounceEvent.source == source)
    if edition_id is not None:
        query = query.where(BounceEvent.edition_id == edition_id)
    rows = await session.scalars(query.limit(min(limit, MAX_LIMIT)).offset(offset))
    return [_view(row) for row in rows]


async def counts_for_edition(session: AsyncSession, edition_id: int) -> dict[str, int]:
    """Bounces and complaints that came back for an edition, by kind."""
    rows = await session.execute(
        select(BounceEvent.kind, func.count())
        .where(BounceEvent.edition_id == edition_id)
        .group_by(BounceEvent.kind)
    )
    return {kind: int(count) for kind, count in rows.all()}


def _view(row: BounceEvent) -> BounceView:
    return BounceView(
        id=row.id,
        received_at=row.received_at,
        source=row.source,
        kind=row.kind,
        outcome=row.outcome,
        recipient=row.recipient,
        status=row.status,
        diagnostic=row.diagnostic,
        feedback_type=row.feedback_type,
        matched_by=row.matched_by,
        subscriber_id=row.subscriber_id,
        edition_id=row.edition_id,
        delivery_id=row.delivery_id,
    )
