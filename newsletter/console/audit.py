"""The audit trail: every console action and login attempt, with who, on what and from where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from newsletter.context import AppContext
from newsletter.database.models import AuditEvent

PAGE = 50


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str
    address: str


async def record(
    context: AppContext, actor: str, action: str, *, target: str = "", detail: str = "", address: str = ""
) -> None:
    async with context.db.session() as session:
        session.add(
            AuditEvent(
                actor=actor[:64], action=action[:40], target=target[:200], detail=detail, address=address[:64]
            )
        )
        await session.commit()


async def recent(context: AppContext, *, before: int | None = None, limit: int = PAGE) -> list[Entry]:
    """Newest first, a page at a time below the id `before` (keyset: as fast on the last page)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    async with context.db.session() as session:
        rows = (await session.scalars(query)).all()
    return [Entry(r.id, r.at, r.actor, r.action, r.target, r.detail, r.address) for r in rows]
