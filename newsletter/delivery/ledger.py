"""The delivery ledger: one row per edition and subscriber, and what happens to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import Delivery, Edition, Message, utcnow

PENDING = ("queued", "retry")


async def skip_pending_for(
    session: AsyncSession,
    subscriber_id: int,
    newsletter_id: str | None = None,
    *,
    reason: str = "unsubscribed",
    now: datetime | None = None,
) -> int:
    """Mark a subscriber's not-yet-sent deliveries (of one newsletter, or all) as skipped.

    Rows already claimed by a worker ('sending') are caught by the worker's own check
    just before each SMTP transaction. Returns how many rows were skipped.
    """
    query = (
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status.in_(PENDING))
        .values(status="skipped", last_reply=reason, updated_at=now or utcnow())
    )
    if newsletter_id is not None:
        editions = select(Edition.id).where(Edition.newsletter_id == newsletter_id)
        query = query.where(Delivery.edition_id.in_(editions.scalar_subquery()))
    result = await session.execute(query, execution_options={"synchronize_session": False})
    if newsletter_id is None:
        await session.execute(
            update(Message)
            .where(Message.subscriber_id == subscriber_id, Message.status.in_(PENDING))
            .values(status="skipped", last_reply=reason),
            execution_options={"synchronize_session": False},
        )
    return int(getattr(result, "rowcount", 0) or 0)
