"""The outbox of one-off messages (confirmation emails), sent by the worker ahead of editions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import Message, utcnow

CONFIRMATION = "confirmation"


async def enqueue_confirmation(
    session: AsyncSession,
    subscriber_id: int,
    newsletter_id: str | None = None,
    *,
    now: datetime | None = None,
) -> Message:
    """Record that a confirmation email is owed; the worker renders and sends it.

    Part of the caller's transaction: the signup and its email commit together or not at all.
    """
    message = Message(
        kind=CONFIRMATION,
        subscriber_id=subscriber_id,
        newsletter_id=newsletter_id,
        status="queued",
        attempts=0,
        next_attempt_at=now or utcnow(),
    )
    session.add(message)
    await session.flush()
    return message
