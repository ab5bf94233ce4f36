"""The suppression list: addresses never mailed again.

Three reasons put an address here. "erased": kept only as a hash; the owner's own double
opt-in lifts it. "complaint" (the reader reported a message as spam) and "manual" (an
operator's entry): the address is kept for operators, a signup for it is answered as usual
but nothing is sent, and only an operator lifts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import Insert

from newsletter.database.models import Suppression, utcnow
from newsletter.database.upsert import insert_for
from newsletter.errors import NotFound
from newsletter.states import SubscriberStatus, SuppressionReason
from newsletter.subscriptions import service
from newsletter.subscriptions.addresses import Address, email_hash
from newsletter.subscriptions.audit import Actor


@dataclass(frozen=True)
class SuppressionEntry:
    email: str | None  # None for an erased address: only its hash is kept
    email_hash: str
    reason: str
    created_at: datetime

    def as_json(self) -> dict[str, str | None]:
        return {
            "email": self.email,
            "email_hash": self.email_hash,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
        }


def suppression_insert(dialect: str, key: str, reason: SuppressionReason, now: datetime) -> Insert:
    """Add `key` (a normalised, lower-case address) to the list: new, or replacing an erasure's
    hash-only entry with a stronger reason and the address; any other entry is kept as it is.
    RETURNING the hash when something was written."""
    values = {"email_hash": email_hash(key), "reason": reason.value, "email": key, "created_at": now}
    statement = insert_for(dialect, Suppression).values(values)
    return statement.on_conflict_do_update(
        index_elements=["email_hash"],
        set_={"reason": statement.excluded.reason, "email": statement.excluded.email},
        where=Suppression.reason == SuppressionReason.ERASED.value,
    ).returning(Suppression.email_hash)


async def suppress(
    db: AsyncSession | AsyncConnection,
    address: str,
    reason: SuppressionReason,
    *,
    now: datetime | None = None,
) -> bool:
    """Add `address` to the list; True when it was not there (or only as an erasure)."""
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    result = await conn.execute(
        suppression_insert(conn.dialect.name, address.lower(), reason, now or utcnow())
    )
    return result.first() is not None


async def lift(session: AsyncSession, address: Address) -> None:
    """Remove an address from the list (an operator's decision); NotFound when it is not on it."""
    result = await session.execute(delete(Suppression).where(Suppression.email_hash == address.hash))
    if not getattr(result, "rowcount", 0):
        raise NotFound("that address is not suppressed")


async def add_by_operator(
    session: AsyncSession, address: Address, *, actor: Actor, now: datetime | None = None
) -> bool:
    """Suppress an address; a subscriber who has it is unsubscribed from everything at once."""
    now = now or utcnow()
    added = await suppress(session, address.key, SuppressionReason.MANUAL, now=now)
    subscriber = await service.find_by_key(session, address.key)
    if subscriber is not None and subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING):
        await service.unsubscribe(
            session, subscriber_id=subscriber.id, newsletter_id=None, actor=actor, now=now
        )
    return added


async def listed(
    session: AsyncSession, *, reason: str | None = None, limit: int = 100, offset: int = 0
) -> list[SuppressionEntry]:
    query = select(Suppression).order_by(Suppression.created_at.desc(), Suppression.email_hash)
    if reason is not None:
        query = query.where(Suppression.reason == reason)
    rows = await session.scalars(query.limit(limit).offset(offset))
    return [SuppressionEntry(r.email, r.email_hash, r.reason, r.created_at) for r in rows]
