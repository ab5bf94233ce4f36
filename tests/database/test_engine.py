"""The SQLite engine: the process's async connection writes before the ledger thread."""

from __future__ import annotations

import asyncio
import threading

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.engine import ForegroundFirst


def test_a_background_writer_waits_until_the_foreground_is_done() -> None:
    foreground = ForegroundFirst()
    foreground.checked_out()
    waited = threading.Event()
    turns: list[bool] = []

    def background() -> None:
        turns.append(foreground.wait_for_turn(timeout=60))
        waited.set()

    thread = threading.Thread(target=background)
    thread.start()
    assert not waited.wait(0.2)  # still waiting while the connection is out
    foreground.checked_in()
    thread.join(60)
    assert waited.is_set() and turns == [True]


def test_a_background_writer_waits_only_so_long() -> None:
    foreground = ForegroundFirst()
    foreground.checked_out()
    assert foreground.wait_for_turn(timeout=0.01) is False  # the connection is still out
    foreground.checked_in()
    assert foreground.wait_for_turn(timeout=0.01) is True


async def test_sqlite_tracks_its_async_connection(context: AppContext, settings: Settings) -> None:
    foreground = context.db.foreground
    if not context.db.is_sqlite:
        assert foreground is None
        return
    assert foreground is not None
    async with context.db.session() as session, session.begin():
        await session.connection()
        # A background writer would wait for the connection in use...
        assert await asyncio.to_thread(foreground.wait_for_turn, 0.01) is False
    # ...and goes at once when it is back in its pool.
    assert await asyncio.to_thread(foreground.wait_for_turn, 0.01) is True
