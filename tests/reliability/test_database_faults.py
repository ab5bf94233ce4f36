"""Database faults: PostgreSQL connections killed under a running worker."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition
from newsletter.editions.service import start_edition
from tests.support.database import libpq
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, start
from tests.support.smtp import Mailbox, SmtpServer

pytestmark = pytest.mark.slow

EDITION = 3000


def terminate_other_backends(url: str) -> int:
    """pg_terminate_backend on every connection to the test database but this one."""
    database = make_url(url).database
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


async def test_a_worker_survives_its_connections_being_killed(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    if context.db.dialect != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    await add_articles(context, 3)
    await add_subscribers(context, EDITION)
    edition = await start_edition(context, "daily")
    sink = Mailbox()
    with SmtpServer(sink) as server:
        env = environment_for(
            settings, NEWSLETTER_SMTP__PORT=str(server.port), NEWSLETTER_SMTP__CONCURRENCY="4"
        )
        worker = start("worker", cwd=tmp_path, env=env)
        try:
            killed = 0
            for target in (EDITION // 4, EDITION // 2, 3 * EDITION // 4):
                async with asyncio.timeout(120):
                    while sink.count() < target:
                        assert worker.poll() is None
                        await asyncio.sleep(0.02)
                killed += terminate_other_backends(settings.database.url)
            assert killed >= 3
            async with asyncio.timeout(120):
                while True:
                    async with context.db.session() as session:
                        status = await session.scalar(select(Edition.status).where(Edition.id == edition.id))
                    if status == "done":
                        break
                    assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
                    await asyncio.sleep(0.1)
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(30)
    assert code == 0
    async with context.db.session() as session:
        rows = list((await session.scalars(select(Delivery))).all())
    assert Counter(d.status for d in rows) == {"sent": EDITION}
    received = Counter(m.message_id for m in sink.messages())
    assert set(received) == {d.message_id for d in rows}
    assert max(received.values()) <= 2
