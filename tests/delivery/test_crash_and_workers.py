"""Crash safety and scale-out with real processes: SIGKILL mid-edition, two workers on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition
from newsletter.editions.service import start_edition
from tests.support.editions import addresses
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter, start
from tests.support.smtp import FaultyMailbox, SmtpServer

pytestmark = pytest.mark.slow


async def wait_until(condition: object, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_sigkill_mid_edition_then_restart_loses_nobody(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    concurrency = 4
    await add_articles(context, 4)
    ids = await add_subscribers(context, 400)
    sink = FaultyMailbox(delay=0.003)
    with SmtpServer(sink) as server:
        env = environment_for(
            settings, NEWSLETTER_SMTP__PORT=str(server.port), NEWSLETTER_SMTP__CONCURRENCY=str(concurrency)
        )
        sender = start("send", "--json", cwd=tmp_path, env=env)
        await wait_until(lambda: sink.count() >= 120)
        sender.send_signal(signal.SIGKILL)
        sender.wait(10)
        at_kill = sink.count()
        assert at_kill < 400, "the edition finished before the kill: make it longer"
        # What the server got but the ledger does not show as sent is among the rows marked
        # started, and those are at most one per connection.
        emails = await addresses(context)
        async with context.db.session() as session:
            rows = (await session.scalars(select(Delivery))).all()
        maybe_sent = {emails[d.subscriber_id] for d in rows if d.status == "sending" and d.attempt_started_at}
        sent = {emails[d.subscriber_id] for d in rows if d.status == "sent"}
        unrecorded = {r for m in sink.messages() for r in m.rcpt_tos} - sent
        assert len(maybe_sent) <= concurrency and unrecorded <= maybe_sent
        restarted = newsletter("send", "--json", cwd=tmp_path, env=env)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    received = Counter(r for m in sink.messages() for r in m.rcpt_tos)
    async with context.db.session() as session:
        rows = (await session.scalars(select(Delivery))).all()
    assert len(rows) == len(ids) and {d.status for d in rows} == {"sent"}
    assert len(received) == 400  # everyone got it
    twice = [address for address, n in received.items() if n > 1]
    assert len(twice) <= concurrency and max(received.values()) <= 2
    for address in twice:
        message_ids = {m.message_id for m in sink.messages() if address in m.rcpt_tos}
        assert len(message_ids) == 1  # a resent copy can be recognised


async def test_two_workers_on_postgresql_deliver_each_message_once(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    if context.db.dialect != "postgresql":
        pytest.skip("several workers share an edition through PostgreSQL (one at a time on SQLite)")
    await add_articles(context, 3)
    await add_subscribers(context, 600)
    edition = await start_edition(context, "daily")
    env = environment_for(settings, NEWSLETTER_SMTP__CONCURRENCY="4", NEWSLETTER_DELIVERY__BATCH_SIZE="50")
    workers = [start("worker", cwd=tmp_path, env=env) for _ in range(2)]
    try:

        async def done() -> bool:
            async with context.db.session() as session:
                return await session.scalar(select(Edition.status).where(Edition.id == edition.id)) == "done"

        async with asyncio.timeout(120):
            while not await done():
                assert all(w.poll() is None for w in workers), [w.stdout.read() for w in workers if w.stdout]
                await asyncio.sleep(0.1)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(30) for worker in workers]
    assert codes == [0, 0]
    logs = [worker.stdout.read() if worker.stdout else "" for worker in workers]
    shares = [int(re.search(r"worker.stopped .* sent=(\d+)", log).group(1)) for log in logs]  # type: ignore[union-attr]
    assert sum(shares) == 600 and min(shares) > 0, shares
    received = Counter(r for m in smtp_server.handler.messages() for r in m.rcpt_tos)
    assert len(received) == 600 and set(received.values()) == {1}
    async with context.db.session() as session:
        owners = Counter((await session.scalars(select(Delivery.status))).all())
    assert owners == {"sent": 600}
