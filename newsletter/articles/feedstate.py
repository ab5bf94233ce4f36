"""What the last fetch of each feed returned: validators for conditional GET, status, last error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import FeedState
from newsletter.database.upsert import insert_for

_MAX_ERROR_CHARS = 2000


async def load_feed_state(session: AsyncSession, feed_url: str) -> FeedState | None:
    return await session.get(FeedState, feed_url)


async def record_success(
    session: AsyncSession,
    feed_url: str,
    *,
    checked_at: datetime,
    status: int | None,
    etag: str | None,
    last_modified: str | None,
) -> None:
    """A fetch that was parsed and stored: its validators are used for the next conditional GET."""
    await _upsert(
        session,
        feed_url,
        checked_at=checked_at,
        last_status=status,
        last_error=None,
        etag=_fit(etag, 500),
        last_modified=_fit(last_modified, 100),
    )


async def record_check(
    session: AsyncSession, feed_url: str, *, checked_at: datetime, status: int | None, error: str | None
) -> None:
    """A fetch that stored nothing (not modified, or failed): the validators stay as they were."""
    await _upsert(
        session,
        feed_url,
        checked_at=checked_at,
        last_status=status,
        last_error=error[:_MAX_ERROR_CHARS] if error else None,
    )


async def _upsert(session: AsyncSession, feed_url: str, **values: Any) -> None:
    statement = insert_for(session.get_bind().dialect.name, FeedState).values(feed_url=feed_url, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["feed_url"], set_=values))


def _fit(value: str | None, limit: int) -> str | None:
    # A validator too long for its column is useless rather than an error: drop it.
    return value if value is not None and len(value) <= limit else None
