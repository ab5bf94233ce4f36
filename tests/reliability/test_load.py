"""2,000 signups from a concurrent client while an edition is being sent: every valid signup is
stored exactly once, nothing is lost; latency is reported (the assertions are on correctness)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Message, Subscriber
from newsletter.editions.service import start_edition
from tests.support.factories import add_articles, add_subscribers
from tests.support.live import live_server
from tests.support.smtp import Mailbox, SmtpServer

pytestmark = pytest.mark.slow

SIGNUPS = 2000
INVALID_EVERY = 10  # every tenth signup is refused (bad address): 422, nothing stored
EDITION = 5000


async def test_signups_under_load_while_an_edition_is_sent(
    settings: Settings,
    context: AppContext,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    await add_articles(context, 4)
    await add_subscribers(context, EDITION)
    edition = await start_edition(context, "daily")
    sink = Mailbox()
    with (
        SmtpServer(sink) as smtp,
        live_server(
            tmp_path,
            settings.database.url,
            NEWSLETTER_SERVER__WORKER="true",
            NEWSLETTER_SMTP__PORT=str(smtp.port),
            NEWSLETTER_SUBSCRIPTIONS__RATE_LIMIT_PER_MINUTE="1000000",
        ) as server,
    ):
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        gate = asyncio.Semaphore(40)

        async def signup(http: httpx.AsyncClient, n: int) -> None:
            email = f"load{n}@readers.example" if n % INVALID_EVERY else f"load{n}@@invalid"
            async with gate:
                started = time.perf_counter()
                response = await http.post("/subscribe", json={"email": email})
                latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as http:
            while sink.count() < 100:  # the edition is going out
                await asyncio.sleep(0.05)
            began = time.perf_counter()
            await asyncio.gather(*(signup(http, n) for n in range(SIGNUPS)))
            elapsed = time.perf_counter() - began
        sent_during = sink.count()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    record_property("signups_per_second", round(SIGNUPS / elapsed))
    record_property("p50_ms", round(p50, 1))
    record_property("p99_ms", round(p99, 1))
    print(
        f"\n{SIGNUPS} signups in {elapsed:.1f} s: p50 {p50:.0f} ms, p99 {p99:.0f} ms ({context.db.dialect})"
    )

    invalid = SIGNUPS // INVALID_EVERY
    assert statuses == {202: SIGNUPS - invalid, 422: invalid}
    async with context.db.session() as session:
        stored = Counter(
            (await session.scalars(select(Subscriber.email).where(Subscriber.email.like("load%")))).all()
        )
        confirmations = await session.scalar(
            select(func.count())
            .select_from(Message)
            .join(Subscriber, Subscriber.id == Message.subscriber_id)
            .where(Subscriber.email.like("load%"))
        )
        delivered = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.edition_id == edition.id)
        )
    assert len(stored) == SIGNUPS - invalid and set(stored.values()) == {1}
    assert confirmations == SIGNUPS - invalid
    assert delivered == EDITION and sent_during >= 100
