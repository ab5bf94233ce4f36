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
    """Record that confirmation emails are owed to these (subscriber id, newsletter id) pairs, in
    one statement; the worker renders and sends them. Part of the caller's transaction: a signup
    and its email commit together or not at all."""
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
