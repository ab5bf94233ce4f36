"""`subscribers export`: every subscriber with an address, streamed to CSV on a read-only connection."""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from sqlalchemy import Row, Select, select

from newsletter.database.engine import READ_ONLY, Database
from newsletter.database.models import Subscriber, Subscription
from newsletter.database.sections import parse_sections
from newsletter.errors import InvalidInput
from newsletter.subscriptions.csvfiles import neutralise

HEADER = ("email", "status", "newsletters", "sections", "timezone", "created_at", "confirmed_at")
STREAM_ROWS = 2000


def _query(status: str | None) -> Select[*tuple[Any, ...]]:
    query = (
        select(
            Subscriber.id,
            Subscriber.email,
            Subscriber.status,
            Subscriber.timezone,
            Subscriber.created_at,
            Subscriber.confirmed_at,
            Subscription.newsletter_id,
            Subscription.sections,
        )
        .outerjoin(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscriber.email.is_not(None))
        .order_by(Subscriber.id, Subscription.newsletter_id)
    )
    return query.where(Subscriber.status == status) if status else query


def _record(rows: Sequence[Row[Any]]) -> list[str]:
    first = rows[0]
    choices = {row.newsletter_id: parse_sections(row.sections) for row in rows if row.newsletter_id}
    distinct = {tuple(sections) for sections in choices.values()}
    if len(distinct) <= 1:
        sections = list(next(iter(distinct), ()))
    else:
        # Choices differ between newsletters: scope each section ("daily:World").
        sections = [f"{newsletter_id}:{s}" for newsletter_id, chosen in choices.items() for s in chosen]
    cells = [
        first.email,
        first.status,
        ";".join(choices),
        ";".join(sections),
        first.timezone or "",
        first.created_at.isoformat() if first.created_at else "",
        first.confirmed_at.isoformat() if first.confirmed_at else "",
    ]
    return [neutralise(str(cell)) for cell in cells]


async def export_csv(db: Database, path: Path, *, status: str | None = None) -> int:
    """Write the CSV (atomically: a temporary file renamed at the end); returns how many subscribers."""
    partial = path.with_name(path.name + ".partial")
    try:
        handle = await asyncio.to_thread(partial.open, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot write: {exc.strerror}") from None
    count = 0
    try:
        writer = csv.writer(handle)
        await asyncio.to_thread(writer.writerow, HEADER)
        held: list[Row[Any]] = []  # a subscriber's rows may straddle two partitions
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(**READ_ONLY, yield_per=STREAM_ROWS)
            result = await conn.stream(_query(status))
            async for partition in result.partitions():
                groups = [list(g) for _, g in groupby([*held, *partition], key=lambda row: row.id)]
                held = groups.pop()
                await asyncio.to_thread(writer.writerows, [_record(g) for g in groups])
                count += len(groups)
        if held:
            await asyncio.to_thread(writer.writerow, _record(held))
            count += 1
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, partial, path)
    except BaseException:
        handle.close()
        partial.unlink(missing_ok=True)
        raise
    return count
