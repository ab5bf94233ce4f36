"""The console's costly figures: finished editions keep their counts; snapshots answer at once
and are counted again in the background once stale."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update

from newsletter.console import dashboard
from newsletter.console.snapshots import Snapshots
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition
from newsletter.editions import service
from newsletter.editions.sending import drain
from tests.support.factories import add_articles


async def test_a_finished_edition_keeps_its_counts(
    context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    sent = await edition_for(3)
    await drain(context, editions={sent.id})
    await add_articles(context, 4)  # news for another edition
    cancelled = await service.start_edition(context, "daily", new=True)
    await service.cancel(context, cancelled.id)
    async with context.db.session() as session:
        kept = dict((await session.execute(select(Edition.id, Edition.final_counts))).all())
        # Were the rows counted again, this would show: the kept figures are what reports read.
        await session.execute(update(Delivery).where(Delivery.edition_id == sent.id).values(status="failed"))
        await session.commit()
    assert json.loads(kept[sent.id] or "{}")["sent"] == 3
    assert json.loads(kept[cancelled.id] or "{}")["skipped"] == 3
    report = await service.report(context, sent.id)
    assert report.counts["sent"] == 3 and report.counts["failed"] == 0
    listed = {r.id: r.counts for r in await service.list_reports(context)}
    assert listed[sent.id]["sent"] == 3 and listed[cancelled.id]["skipped"] == 3


async def test_an_unfinished_edition_is_counted_by_the_callers_means(
    context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition = await edition_for(4)
    asked: list[int] = []

    async def live(edition_id: int) -> dict[str, int]:
        asked.append(edition_id)
        return {"queued": 99}

    assert (await service.report(context, edition.id, live=live)).counts == {"queued": 99}
    assert (await service.report(context, edition.id)).counts["queued"] == 4
    assert [r.counts for r in await service.list_reports(context, live=live)] == [{"queued": 99}]
    assert asked == [edition.id, edition.id]


async def test_snapshots_answer_at_once_and_recount_in_the_background() -> None:
    now = [0.0]
    snapshots = Snapshots(clock=lambda: now[0])
    counted: list[int] = []
    gate = asyncio.Event()

    async def count() -> int:
        counted.append(len(counted) + 1)
        if len(counted) > 1:
            await gate.wait()
        return len(counted)

    assert await snapshots.get("k", count, 1.0) == 1  # the first is counted while it waits
    now[0] = 0.5
    assert await snapshots.get("k", count, 1.0) == 1 and counted == [1]  # fresh: not counted
    now[0] = 2.0
    assert await snapshots.get("k", count, 1.0) == 1  # stale: answered as it was...
    assert await snapshots.get("k", count, 1.0) == 1
    await asyncio.sleep(0)
    assert counted == [1, 2]  # ...and counted again once, in the background
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert await snapshots.get("k", count, 1.0) == 2
    await snapshots.close()


async def test_each_relay_shows_what_it_carried_of_the_latest_edition(
    context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition = await edition_for(3)
    await drain(context, editions={edition.id})
    async with context.db.session() as session:
        first = await session.scalar(select(Delivery.id).where(Delivery.edition_id == edition.id).limit(1))
        failed = {"status": "failed", "last_code": 550, "last_reply": "5.1.1 no such user"}
        await session.execute(update(Delivery).where(Delivery.id == first).values(**failed))
        await session.commit()
    [relay] = await dashboard.relays(context)
    assert relay.name == "default" and relay.carried == {"sent": 2, "failed": 1}
    assert relay.last_failure == "550 5.1.1 no such user"
