"""What the database says about an edition: when it was enqueued and how fast it was sent.

enqueue = started_at − created_at (the edition row is created, its variants rendered, then one
INSERT … SELECT writes the deliveries and sets started_at).
delivery rate = (sent − 1) / (last sent_at − first sent_at): the SMTP phase only, without process
start-up and enqueueing (sent_at is stamped when a group of outcomes is committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition


@dataclass(frozen=True)
class EditionFigures:
    id: int
    status: str
    total: int
    sent: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    first_sent: datetime | None
    last_sent: datetime | None

    @property
    def enqueue_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.started_at - self.created_at).total_seconds()

    @property
    def sending_seconds(self) -> float | None:
        if self.first_sent is None or self.last_sent is None:
            return None
        return (self.last_sent - self.first_sent).total_seconds()

    @property
    def rate(self) -> float | None:
        """Messages per second over the sending phase."""
        seconds = self.sending_seconds
        if not seconds or self.sent < 2:
            return None
        return (self.sent - 1) / seconds


async def latest_edition(context: AppContext) -> int | None:
    async with context.db.session() as session:
        return await session.scalar(select(func.max(Edition.id)))


async def edition_started(context: AppContext, edition_id: int) -> bool:
    async with context.db.session() as session:
        started = await session.scalar(select(Edition.started_at).where(Edition.id == edition_id))
    return started is not None


async def edition_status(context: AppContext, edition_id: int) -> str | None:
    async with context.db.session() as session:
        return await session.scalar(select(Edition.status).where(Edition.id == edition_id))


async def sent_count(context: AppContext, edition_id: int) -> int:
    async with context.db.session() as session:
        count = await session.scalar(
            select(func.count()).where(Delivery.edition_id == edition_id, Delivery.status == "sent")
        )
    return int(count or 0)


async def edition_figures(context: AppContext, edition_id: int) -> EditionFigures:
    async with context.db.session() as session:
        edition = await session.get(Edition, edition_id)
        assert edition is not None, f"edition {edition_id} not found"
        sent, first, last = (
            await session.execute(
                select(func.count(), func.min(Delivery.sent_at), func.max(Delivery.sent_at)).where(
                    Delivery.edition_id == edition_id, Delivery.status == "sent"
                )
            )
        ).one()
    return EditionFigures(
        id=edition.id,
        status=edition.status,
        total=edition.total,
        sent=int(sent or 0),
        created_at=edition.created_at,
        started_at=edition.started_at,
        finished_at=edition.finished_at,
        first_sent=first,
        last_sent=last,
    )
