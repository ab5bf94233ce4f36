"""The outbox of one-off messages (confirmation emails), sent by the worker ahead of editions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from newsletter.database.models import Message, utcnow

CONFIRMATION = "confirmation"


async def enqueue_confirmations(
    session: AsyncSession | AsyncConnection,
    owed: Sequence[tuple[int, str | None]],
    *,
    now: datetime | None = None,
) -> None:
    """`enqueue_confirmation` for many (subscriber id, newsletter id) pairs, in one statement."""
    moment = now or utcnow()
    if owed:
        await session.execute(
            insert(Message), [_row(subscriber, newsletter, moment) for subscriber, newsletter in owed]
        )


def _row(subscriber_id: int, newsletter_id: str | None, now: datetime) -> dict[str, object]:
    return {
        "kind": CONFIRMATION,
        "subscriber_id": subscriber_id,
        "newsletter_id": newsletter_id,
        "status": "queued",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


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
    message = Message(**_row(subscriber_id, newsletter_id, now or utcnow()))
    session.add(message)
    await session.flush()
    return message
