"""SIGKILL at random points of a 10,000-subscriber edition, and of one of two PostgreSQL workers:
afterwards each subscriber has the edition once in the ledger, and got it at least once and at
most twice (a resend carries the same Message-ID). Twice at most because the ledger knows which
rows may have gone out at a kill (their attempt was marked started) and sends those first after
the restart, so the next kill does not find them in flight again."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition
from newsletter.editions.service import start_edition
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter, start
from tests.support.smtp import Mailbox, SmtpServer

pytestmark = pytest.mark.slow

EDITION = 10_000
CONCURRENCY = 8


async def wait_for_count(sink: Mailbox, target: int, timeout: float = 120) -> None:
    async with asyncio.timeout(timeout):
        while sink.count() < target:
            await asyncio.sleep(0.05)


def check(rows: list[Delivery], sink: Mailbox, *, kills: int) -> None:
    assert len(rows) == EDITION and len({d.subscriber_id for d in rows}) == EDITION
    assert Counter(d.status for d in rows) == {"sent": EDITION}
    received = Counter(m.message_id for m in sink.messages())
    assert set(received) == {d.message_id for d in rows}  # everyone got it...
    assert max(received.values()) <= 2  # ...at most twice,
    assert sum(received.values()) - EDITION <= kills * CONCURRENCY  # and only what was in flight


async def test_sigkill_at_ten_random_points_then_restart(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    await add_articles(context, 4)
    await add_subscribers(context, EDITION)
    sink = Mailbox()
    points = sorted(random.Random(2026).sample(range(500, EDITION - 1000), 10))
    with SmtpServer(sink) as server:
        env = environment_for(
            settings, NEWSLETTER_SMTP__PORT=str(server.port), NEWSLETTER_SMTP__CONCURRENCY=str(CONCURRENCY)
        )
        for point in points:
            sender = start("send", "--json", cwd=tmp_path, env=env)
            try:
                await wait_for_count(sink, point)
            finally:
                sender.send_signal(signal.SIGKILL)
                sender.wait(30)
        finished = newsletter("send", "--json", cwd=tmp_path, env=env, timeout=300)
        assert finished.returncode == 0, finished.stdout + finished.stderr
    async with context.db.session() as session:
        rows = list((await session.scalars(select(Delivery))).all())
    check(rows, sink, kills=len(points))


async def test_sigkill_of_one_of_two_postgresql_workers(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    if context.db.dialect != "postgresql":
        pytest.skip("two workers share an edition through PostgreSQL")
    await add_articles(context, 4)
    await add_subscribers(context, EDITION)
    edition = await start_edition(context, "daily")
    sink = Mailbox()
    with SmtpServer(sink) as server:
        env = environment_for(
            settings,
            NEWSLETTER_SMTP__PORT=str(server.port),
            NEWSLETTER_SMTP__CONCURRENCY=str(CONCURRENCY),
            NEWSLETTER_DELIVERY__LEASE_SECONDS="10",
            NEWSLETTER_SCHEDULER__SWEEP_SECONDS="1",
        )
        workers = [start("worker", cwd=tmp_path, env=env) for _ in range(2)]
        try:
            await wait_for_count(sink, EDITION // 3)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(30)
            # The survivor takes over the dead worker's leases once they expire.
            async with asyncio.timeout(300):
                while True:
                    async with context.db.session() as session:
                        status = await session.scalar(select(Edition.status).where(Edition.id == edition.id))
                    if status == "done":
                        break
                    assert workers[1].poll() is None
                    await asyncio.sleep(0.2)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                    worker.wait(30)
    assert workers[1].returncode == 0
    async with context.db.session() as session:
        rows = list((await session.scalars(select(Delivery))).all())
    check(rows, sink, kills=1)
