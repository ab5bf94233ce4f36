"""The click recorder's lanes: a batch starts on a free ledger thread while another commits."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import Connection, select

from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Click, utcnow
from newsletter.database.writer import LedgerWriter
from newsletter.engagement.recorder import ClickRecorder

WAIT = 10.0


def _click(article_id: int) -> dict[str, Any]:
    return {
        "at": utcnow(),
        "kind": "click",
        "edition_id": 1,
        "article_id": article_id,
        "filtered": None,
        "after_send_seconds": 0,
        "delivery_id": None,
        "subscriber_id": None,
    }


async def _stored(context: AppContext) -> list[int | None]:
    """The clicks' articles, read without waiting for a writer (SQLite: no write lock)."""
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(**READ_ONLY)
        return sorted((await conn.scalars(select(Click.article_id))).all(), key=lambda n: n or 0)


async def _turns() -> None:
    """Let the tasks already scheduled run up to their next wait."""
    for _ in range(3):
        await asyncio.sleep(0)


def _held(release: threading.Event) -> Any:
    """A job that keeps its ledger thread busy until `release` is set."""

    def hold(conn: Connection) -> None:
        if not release.wait(WAIT):
            raise TimeoutError("never released")

    return hold


async def test_a_click_commits_on_a_free_lane_while_another_lane_is_busy(context: AppContext) -> None:
    if context.db.is_sqlite:
        pytest.skip("SQLite writes one transaction at a time: the service gives it one lane")
    busy, free = LedgerWriter(context.settings.database), LedgerWriter(context.settings.database)
    release = threading.Event()
    try:
        holding = asyncio.create_task(busy.transaction(_held(release)))
        recorder = ClickRecorder([free, busy])  # the busy lane is taken first
        first = asyncio.create_task(recorder.record(_click(1)))  # queued behind the held job
        await _turns()  # its batch handed to the busy lane (a click before that would join it)
        await asyncio.wait_for(recorder.record(_click(2)), WAIT)  # answered all the same
        assert not first.done()
        assert await _stored(context) == [2]
        release.set()
        await asyncio.wait_for(first, WAIT)
        await holding
        assert await _stored(context) == [1, 2]
    finally:
        release.set()
        await busy.close()
        await free.close()


async def test_one_lane_answers_only_after_the_commit_before_it(context: AppContext) -> None:
    lane = LedgerWriter(context.settings.database)
    release = threading.Event()
    try:
        holding = asyncio.create_task(lane.transaction(_held(release)))
        recorder = ClickRecorder([lane])
        clicks = [asyncio.create_task(recorder.record(_click(n))) for n in range(1, 4)]
        done, _ = await asyncio.wait(clicks, timeout=0.2)
        assert not done and await _stored(context) == []
        release.set()
        await asyncio.wait_for(asyncio.gather(*clicks), WAIT)
        await holding
        assert await _stored(context) == [1, 2, 3]
    finally:
        release.set()
        await lane.close()


async def test_a_failed_commit_fails_its_own_clicks_and_frees_its_lane(context: AppContext) -> None:
    lane = LedgerWriter(context.settings.database)
    recorder = ClickRecorder([lane])
    try:
        broken = {**_click(1), "kind": None}  # NOT NULL: the batch's transaction fails
        failed = await asyncio.gather(recorder.record(broken), return_exceptions=True)
        assert isinstance(failed[0], Exception)
        await asyncio.wait_for(recorder.record(_click(2)), WAIT)
        assert await _stored(context) == [2]
    finally:
        await lane.close()


async def test_the_context_gives_postgresql_two_lanes_and_sqlite_one(context: AppContext) -> None:
    lanes = context.ledger_lanes()
    assert len(lanes) == (1 if context.db.is_sqlite else 2)
    assert lanes[0] is context.writer and len(set(map(id, lanes))) == len(lanes)
