"""Forgetting clicks and opens older than `tracking.retention_days`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from newsletter.context import AppContext
from newsletter.database.models import Click, utcnow
from newsletter.logs import get_logger

log = get_logger(__name__)

BATCH = 5000


async def delete_old_clicks(context: AppContext, *, now: datetime | None = None) -> int:
    """Delete click and open events past their retention, a batch per transaction."""
    before = (now or utcnow()) - timedelta(days=context.settings.tracking.retention_days)
    deleted = 0
    while True:
        async with context.db.session() as session, session.begin():
            ids = list((await session.scalars(select(Click.id).where(Click.at < before).limit(BATCH))).all())
            if ids:
                await session.execute(delete(Click).where(Click.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < BATCH:
            break
    if deleted:
        log.info("clicks.deleted", count=deleted, before=before.isoformat())
    return deleted
