"""Signups while an edition is being sent: every valid signup is stored exactly once, nothing is
lost; latency is reported (the assertions are on correctness).

Two loads, 1,000 signups each, one after the other while the same `serve` process sends a
40,000-reader edition:
- flood: 40 signups always outstanding (closed loop), the most the server can take;
- steady: a new signup every 10 ms (100 a second, open loop: each is sent on time whether or
  not earlier ones were answered, and its latency counts from that time), or, on a machine
  whose flood showed less room than that, at 70 % of what the flood sustained: an open load
  past the server's capacity only measures its queue (and starves the send it runs beside).

The SMTP server is postfix's smtp-sink when installed (`make test` installs it), so that on a
two-core machine the CPU goes to the server under test rather than to a Python sink; else
aiosmtpd. The client is aiohttp, for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bench.postfix import Postfix, SmtpSink, tool
from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Message, Subscriber
from newsletter.editions.service import start_edition
from tests.support.factories import add_articles, add_subscribers
from tests.support.live import live_server
from tests.support.smtp import Mailbox, SmtpServer

pytestmark = pytest.mark.slow

SIGNUPS = 1000  # per load
INVALID_EVERY = 10  # every tenth signup is refused (bad address): 422, nothing stored
EDITION = 40_000
STEADY_RATE = 100  # signups a second, at most
STEADY_SHARE_OF_FLOOD = 0.7
FLOOD_OUTSTANDING = 40


@dataclass
class Load:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, int(len(ordered) * fraction) - 1)] * 1000

    def summary(self) -> str:
        p50 = statistics.median(self.latencies) * 1000
        return (
            f"{self.name}: {SIGNUPS} signups in {self.seconds:.1f} s ({SIGNUPS / self.seconds:.0f}/s), "
            f"p50 {p50:.0f} ms, p99 {self.percentile_ms(0.99):.0f} ms, "
            f"max {max(self.latencies) * 1000:.0f} ms"
        )


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """The port of a sink that accepts every message."""
    sink, source = tool("smtp-sink"), tool("smtp-source")
    if sink is not None:
        with SmtpSink(Postfix(sink, source or "", "found")) as postfix:
            yield postfix.port
        return
    with SmtpServer(Mailbox()) as smtp:
        yield smtp.port


def address(load: str, n: int) -> str:
    return f"{load}{n}@readers.example" if n % INVALID_EVERY else f"{load}{n}@@invalid"


async def signup(http: aiohttp.ClientSession, url: str, email: str, load: Load, since: float) -> None:
    async with http.post(url, json={"email": email}) as response:
        await response.read()
    load.latencies.append(time.perf_counter() - since)
    load.statuses[response.status] += 1


async def steady(http: aiohttp.ClientSession, url: str, rate: float) -> Load:
    load = Load(f"steady ({rate:.0f}/s)")
    began = time.perf_counter()

    async def on_time(n: int) -> None:
        due = began + n / rate
        await asyncio.sleep(due - time.perf_counter())
        await signup(http, url, address("steady", n), load, due)

    await asyncio.gather(*(on_time(n) for n in range(SIGNUPS)))
    load.seconds = time.perf_counter() - began
    return load


async def flood(http: aiohttp.ClientSession, url: str) -> Load:
    load = Load("flood")
    gate = asyncio.Semaphore(FLOOD_OUTSTANDING)

    async def when_free(n: int) -> None:
        async with gate:
            await signup(http, url, address("flood", n), load, time.perf_counter())

    began = time.perf_counter()
    await asyncio.gather(*(when_free(n) for n in range(SIGNUPS)))
    load.seconds = time.perf_counter() - began
    return load


async def test_signups_while_an_edition_is_sent(
    settings: Settings,
    context: AppContext,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    await add_articles(context, 4)
    await add_subscribers(context, EDITION)
    edition = await start_edition(context, "daily")

    async def sent() -> int:
        async with context.db.session() as session:
            query = select(func.count()).select_from(Delivery)
            count = await session.scalar(
                query.where(Delivery.edition_id == edition.id, Delivery.status == "sent")
            )
        return int(count or 0)

    with (
        smtp_sink() as smtp_port,
        live_server(
            tmp_path,
            settings.database.url,
            NEWSLETTER_SERVER__WORKER="true",
            NEWSLETTER_SMTP__PORT=str(smtp_port),
            NEWSLETTER_SUBSCRIPTIONS__RATE_LIMIT_PER_MINUTE="1000000",
        ) as server,
    ):
        while await sent() < 100:  # the edition is going out
            await asyncio.sleep(0.05)
        url = f"{server.base_url}/subscribe"
        connector = aiohttp.TCPConnector(limit=200)
        timeout = aiohttp.ClientTimeout(total=60)
        loads: list[Load] = []
        sent_before = [await sent()]
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            loads.append(await flood(http, url))
            sent_before.append(await sent())
            rate = min(STEADY_RATE, STEADY_SHARE_OF_FLOOD * SIGNUPS / loads[0].seconds)
            loads.append(await steady(http, url, rate))
            sent_before.append(await sent())

    for load in loads:
        print(f"\n{load.summary()} ({context.db.dialect})", end="")
        name = load.name.split()[0]
        record_property(f"{name}_signups_per_second", round(SIGNUPS / load.seconds))
        record_property(f"{name}_p50_ms", round(statistics.median(load.latencies) * 1000, 1))
        record_property(f"{name}_p99_ms", round(load.percentile_ms(0.99), 1))
    print(f"\nsent during the loads: {sent_before}")

    invalid = SIGNUPS // INVALID_EVERY
    for load in loads:
        assert load.statuses == {202: SIGNUPS - invalid, 422: invalid}, load.name
    # Each load ran while the edition was still going out.
    assert sent_before[0] < sent_before[1] < EDITION and sent_before[1] < sent_before[2]
    async with context.db.session() as session:
        ours = Subscriber.email.like("%@readers.example") & ~Subscriber.email.like("reader%")
        stored = Counter((await session.scalars(select(Subscriber.email).where(ours))).all())
        confirmations = await session.scalar(
            select(func.count())
            .select_from(Message)
            .join(Subscriber, Subscriber.id == Message.subscriber_id)
            .where(ours)
        )
        delivered = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.edition_id == edition.id)
        )
    assert len(stored) == 2 * (SIGNUPS - invalid) and set(stored.values()) == {1}
    assert confirmations == 2 * (SIGNUPS - invalid)
    assert delivered == EDITION
