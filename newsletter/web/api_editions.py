"""Admin API for editions: list, start a send, progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from newsletter.database.models import Edition
from newsletter.web.auth import AdminDep
from newsletter.web.deps import SessionDep

router = APIRouter(prefix="/api/editions", tags=["editions"], dependencies=[AdminDep])


@router.get("")
async def list_editions(session: SessionDep, limit: int = 50) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(Edition).order_by(Edition.id.desc()).limit(limit))).all()
    return [
        {
            "id": e.id,
            "newsletter": e.newsletter_id,
            "date": e.edition_date.isoformat(),
            "sequence": e.sequence,
            "status": e.status,
            "total": e.total,
        }
        for e in rows
    ]
