"""No click is lost when the process is killed: a real `newsletter serve` takes clicks from many
readers at once and is SIGKILLed while some are in flight; every click that got its 302 has its
row (each answer waits for its row's commit; a click cut off may have its row or not)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from newsletter.context import open_context
from newsletter.database.models import Click
from tests.conftest import SECRET_KEY
from tests.engagement.helpers import BASE_URL, READER, TrackedScenario, sent, story_links
from tests.support.database import libpq
from tests.support.live import live_server

pytestmark = pytest.mark.slow

CLICKS, CONCURRENCY, LOCK_AFTER = 400, 20, 150
# How long the clicks' table stays locked before the kill when no click is answered meanwhile
# (none may be: its row cannot be committed). Far under SQLite's busy timeout (30 s), after
# which a write fails and the click is answered unrecorded, as designed.
HOLD_SECONDS = 1.0
# The newsletter as the test's settings have it (sent(): tracked, scanner window 0), for the
# server process; [tracking] lets one client's clicks through the rate limit (repeats are
# counted apart, and written all the same).
CONFIG = f"""\
[site]
base_url = "{BASE_URL}"

[tracking]
scanner_seconds = 0
max_clicks_per_minute = 100000

[[newsletters]]
id = "daily"
name = "London Daily Briefing"
tracking = "aggregate"
utm_source = "nl"
"""


def lock_clicks(url: str) -> Callable[[], None]:
    """Take the lock that keeps the server from committing a click (SQLite: the database's write
    lock; PostgreSQL: the clicks table's); returns what releases it."""
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        assert database is not None
        lite = sqlite3.connect(database, isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        return lite.close  # rolls back
    pg = psycopg.connect(libpq(url))
    pg.execute("LOCK TABLE clicks IN EXCLUSIVE MODE")  # inserts wait; reads do not
    return pg.close  # rolls back


async def test_sigkill_mid_burst_loses_no_answered_click(scenario: TrackedScenario, tmp_path: Path) -> None:
    """Readers click away; after LOCK_AFTER answers the clicks can no longer be committed, so the
    clicks in flight pile up in the server unanswered (answered, they would be lost), and the
    server is killed with them. Killed at an arbitrary moment instead, a server answering before
    its commit would be caught only when the kill won the race with that commit."""
    async with sent(scenario, "aggregate") as s:
        settings = s.context.settings
        [links, _] = story_links(s)
    paths = [urlsplit(link).path for link in links]
    url = settings.database.url
    config = tmp_path / "tracked.toml"
    config.write_text(CONFIG)
    env = {"NEWSLETTER_CONFIG": str(config), "NEWSLETTER_SECURITY__SECRET_KEY": SECRET_KEY}

    with live_server(tmp_path, url, **env) as server:
        answered, cut_off, answered_at_lock = 0, 0, 0
        release: Callable[[], None] | None = None
        locked, answered_while_locked = asyncio.Event(), asyncio.Event()
        queue: asyncio.Queue[str] = asyncio.Queue()
        for n in range(CLICKS):
            queue.put_nowait(paths[n % len(paths)])

        async def reader(http: httpx.AsyncClient) -> None:
            nonlocal answered, cut_off, answered_at_lock, release
            while not queue.empty():
                path = queue.get_nowait()
                try:
                    response = await http.get(path, headers=READER)
                except httpx.TransportError:
                    cut_off += 1
                    return  # the server is gone
                assert response.status_code == 302, (path, response.status_code)
                answered += 1
                if answered == LOCK_AFTER:
                    release, answered_at_lock = lock_clicks(url), answered
                    locked.set()
                # Answers after the lock: at most the batch committed just before it.
                elif locked.is_set() and answered - answered_at_lock > CONCURRENCY:
                    answered_while_locked.set()

        async def killer() -> None:
            await locked.wait()
            # An answer whose row cannot have been committed ends the wait at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered_while_locked.wait(), HOLD_SECONDS)
            server.process.send_signal(signal.SIGKILL)  # no grace, no clean-up

        limits = httpx.Limits(max_connections=CONCURRENCY)
        try:
            async with httpx.AsyncClient(
                base_url=server.base_url, follow_redirects=False, limits=limits, timeout=30, trust_env=False
            ) as http:
                async with asyncio.timeout(60):
                    await asyncio.gather(killer(), *(reader(http) for _ in range(CONCURRENCY)))
            assert server.process.wait(30) == -signal.SIGKILL
        finally:
            if release is not None:
                release()

    assert LOCK_AFTER <= answered < CLICKS and cut_off > 0
    async with open_context(settings, migrate=False) as context, context.db.session() as session:
        rows = int(await session.scalar(select(func.count()).select_from(Click)) or 0)
    # Every answered click is on disk; a click cut off may have been written before its answer.
    assert answered <= rows <= answered + cut_off, (answered, cut_off, rows)
