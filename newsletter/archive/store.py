"""Which editions the archive publishes, and an operator taking one down or putting it back.

Published: built and sent to at least one reader, not cancelled, not taken down."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import Delivery, Edition
from newsletter.errors import NotFound
from newsletter.states import DeliveryStatus, EditionStatus

# A cancelled edition stays unpublished even where some readers had it already.
SHOWN_STATUSES = (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.DONE)


def _sent_to_someone() -> ColumnElement[bool]:
    return exists().where(and_(Delivery.edition_id == Edition.id, Delivery.status == DeliveryStatus.SENT))


def is_published() -> ColumnElement[bool]:
    return and_(
        Edition.status.in_(SHOWN_STATUSES),
        Edition.unpublished_at.is_(None),
        _sent_to_someone(),
    )


async def published_edition(
    session: AsyncSession, newsletter_id: str, day: date, sequence: int
) -> Edition | None:
    return await session.scalar(
        select(Edition).where(
            Edition.newsletter_id == newsletter_id,
            Edition.edition_date == day,
            Edition.sequence == sequence,
            is_published(),
        )
    )


async def published_editions(
    session: AsyncSession, newsletter_id: str, *, limit: int, offset: int = 0
) -> list[Edition]:
    """Newest first."""
    rows = await session.scalars(
        select(Edition)
        .where(Edition.newsletter_id == newsletter_id, is_published())
        .order_by(Edition.edition_date.desc(), Edition.sequence.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all())


async def set_unpublished(session: AsyncSession, edition_id: int, when: datetime | None) -> Edition:
    """Take an edition down (`when`) or put it back (None); NotFound for an unknown id."""
    edition = await session.get(Edition, edition_id)
    if edition is None:
        raise NotFound(f"edition {edition_id} not found")
    if (edition.unpublished_at is None) != (when is None):
        await session.execute(update(Edition).where(Edition.id == edition_id).values(unpublished_at=when))
        await session.commit()
        await session.refresh(edition)
    return edition
