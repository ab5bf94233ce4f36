"""A 5,000-subscriber edition under each SMTP fault: nobody lost, nothing sent twice except what
was in flight when a connection broke, no endless retries, bounces recorded."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from newsletter.context import open_context
from newsletter.database.models import Delivery, Subscriber
from newsletter.editions.sending import drain, worker_for
from tests.conftest import SettingsFactory
from tests.delivery.test_smtp_session import _self_signed
from tests.support.editions import Scenario, deliveries
from tests.support.factories import add_articles, add_subscribers
from tests.support.ports import free_port
from tests.support.smtp import FaultyMailbox, Mailbox, SmtpServer

pytestmark = pytest.mark.slow

EDITION = 5000
SMTP = {"concurrency": 8, "timeout": 2, "max_attempts": 4}
DELIVERY = {"retry_base_seconds": 0.01, "retry_max_seconds": 0.05, "pause_failure_rate": 1, "batch_size": 500}


def chance(address: str, attempt: int, salt: str) -> float:
    """A deterministic 'random' number in [0, 1) per recipient, attempt and fault."""
    digest = hashlib.sha256(f"{salt}:{address}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def number(address: str) -> int:
    return int(address.split("@")[0].removeprefix("reader"))


def check_ledger(
    rows: list[Delivery], handler: Mailbox, *, duplicates: int = 0, max_attempts: int = 4
) -> None:
    """Every delivery final; accepted == sent + the duplicates the faults forced; at most twice each."""
    statuses = Counter(d.status for d in rows)
    assert set(statuses) <= {"sent", "failed", "skipped"}, statuses
    assert all(d.last_reply for d in rows if d.status == "failed")
    assert all(d.attempts <= max_attempts for d in rows)
    accepted = Counter(m.message_id for m in handler.messages())
    sent = {d.message_id for d in rows if d.status == "sent"}
    assert set(accepted) == sent
    assert sum(accepted.values()) == len(sent) + duplicates
    assert max(accepted.values(), default=1) <= 2


async def send_edition(scenario: Scenario, handler: Mailbox, **extra: Any) -> tuple[list[Delivery], Any]:
    async with scenario(
        handler,
        EDITION,
        smtp={**SMTP, **extra.pop("smtp", {})},
        delivery={**DELIVERY, **extra.pop("delivery", {})},
    ) as s:
        await asyncio.wait_for(drain(s.context, editions={s.edition.id}), timeout=180)
        rows = await deliveries(s.context, s.edition.id)
        async with s.context.db.session() as session:
            bounced = set(
                (await session.scalars(select(Subscriber.email).where(Subscriber.status == "bounced"))).all()
            )
        return rows, bounced


async def test_random_temporary_refusals(scenario: Scenario) -> None:
    replies = ("421 4.3.2 try later", "451 4.3.0 local error", "452 4.2.2 mailbox full")

    def rcpt(address: str, attempt: int) -> str | None:
        roll = chance(address, attempt, "temporary")
        return replies[int(roll * 100) % 3] if roll < 0.1 else None

    handler = FaultyMailbox(rcpt=rcpt)
    rows, _ = await send_edition(scenario, handler)
    check_ledger(rows, handler)
    statuses = Counter(d.status for d in rows)
    assert statuses["sent"] >= EDITION - 2 and statuses["sent"] + statuses["failed"] == EDITION
    assert Counter(d.attempts for d in rows)[2] > 300  # about a tenth needed a second attempt


async def test_permanent_refusals_fail_once_and_bounce(scenario: Scenario) -> None:
    codes = {0: "550 5.1.1 no such user", 1: "552 5.2.2 over quota", 2: "553 5.1.3 bad address"}

    def rcpt(address: str, attempt: int) -> str | None:
        n = number(address)
        return codes[(n // 50) % 3] if n % 50 == 0 else None

    handler = FaultyMailbox(rcpt=rcpt)
    rows, bounced = await send_edition(scenario, handler)
    check_ledger(rows, handler)
    failed = [d for d in rows if d.status == "failed"]
    assert len(failed) == EDITION // 50
    assert {d.attempts for d in failed} == {1}
    assert {d.last_code for d in failed} == {550, 552, 553}
    hard = {f"reader{n}@readers.example" for n in range(50, EDITION + 1, 50) if (n // 50) % 3 in (0, 2)}
    assert bounced == hard  # 552 (mailbox full) is not a hard bounce


async def test_connections_dropped_before_during_and_after_data(scenario: Scenario) -> None:
    def first_try(salt: str) -> Any:
        return lambda rcpts: (
            chance(rcpts[0], 1, salt) < 0.01 and not handler.rcpt_attempts.get(rcpts[0], 0) > 1
        )

    handler = FaultyMailbox(
        drop_before_data=lambda address, attempt: attempt == 1 and chance(address, 1, "before") < 0.01,
        drop_at_data=first_try("at"),
        drop_during_data=first_try("during"),
        accept_then_drop=first_try("after"),
    )
    rows, _ = await send_edition(scenario, handler)
    faults = handler.faults
    assert min(faults["drop_before_data"], faults["drop_at_data"], faults["drop_during_data"]) > 10
    assert faults["accept_then_drop"] > 10
    assert Counter(d.status for d in rows) == {"sent": EDITION}
    check_ledger(rows, handler, duplicates=faults["accept_then_drop"])


async def test_a_server_that_hangs_past_the_timeout(scenario: Scenario) -> None:
    handler = FaultyMailbox(
        hang=lambda address, attempt: 3.0 if attempt == 1 and number(address) % 500 == 0 else 0
    )
    rows, _ = await send_edition(scenario, handler, smtp={"timeout": 1.0})
    assert handler.faults["hang"] == EDITION // 500
    assert Counter(d.status for d in rows) == {"sent": EDITION}
    hung = [d for d in rows if d.attempts == 2]
    assert len(hung) >= EDITION // 500
    # A hang at RCPT loses nothing and duplicates nothing. On a loaded machine a normal message
    # can also outlast the timeout after the server took it: that one goes twice, and only a
    # message the ledger shows as retried after a timeout may.
    twice = {m for m, n in Counter(m.message_id for m in handler.messages()).items() if n > 1}
    retried = {d.message_id for d in rows if d.attempts >= 2}
    assert twice <= retried
    check_ledger(rows, handler, duplicates=len(twice))


# A server away this long, with reconnect pauses capped at OUTAGE_PAUSE, takes every sender
# through many pauses at their longest; the outage spends no attempt however long it lasts.
OUTAGE_SECONDS, OUTAGE_PAUSE = 15, 1


async def test_a_server_away_through_many_reconnect_pauses_then_back(
    make_settings: SettingsFactory, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("a long wait proves nothing more on PostgreSQL (the other faults run on both)")
    handler = Mailbox()
    server = SmtpServer(handler, port=free_port()).start()
    settings = make_settings(
        smtp={**SMTP, "port": server.port},
        delivery={**DELIVERY, "server_down_max_backoff": OUTAGE_PAUSE},
    )
    async with open_context(settings) as context:
        await add_articles(context, 4)
        await add_subscribers(context, EDITION)
        from newsletter.editions.service import start_edition

        edition = await start_edition(context, "daily")
        work = asyncio.create_task(drain(context, editions={edition.id}))
        while handler.count() < 1000:
            await asyncio.sleep(0.01)
        server.stop()
        refused_before = REGISTRY.get_sample_value("newsletter_smtp_unavailable_total") or 0
        went_away = time.monotonic()
        while time.monotonic() - went_away < OUTAGE_SECONDS:
            assert not work.done()
            await asyncio.sleep(0.5)
        reconnects = (REGISTRY.get_sample_value("newsletter_smtp_unavailable_total") or 0) - refused_before
        away = time.monotonic() - went_away  # a loaded machine may overrun OUTAGE_SECONDS
        server = SmtpServer(handler, port=server.port).start()
        try:
            await asyncio.wait_for(work, 120)
        finally:
            server.stop()
        rows = await deliveries(context, edition.id)
    # The senders kept trying, each once a pause (0.25, 0.5, then the cap): no tight loop.
    assert OUTAGE_SECONDS / OUTAGE_PAUSE <= reconnects <= SMTP["concurrency"] * (away / OUTAGE_PAUSE + 5)
    assert Counter(d.status for d in rows) == {"sent": EDITION}
    # Only what was in flight when the server vanished needed a second attempt.
    assert sum(1 for d in rows if d.attempts > 1) <= SMTP["concurrency"]
    check_ledger(rows, handler)


async def test_tls_handshake_failure_burns_no_attempts(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # The client insists on implicit TLS; the server only speaks plain SMTP: every handshake fails.
    handler = Mailbox()
    with SmtpServer(handler) as plain:
        broken = make_settings(smtp={**SMTP, "port": plain.port, "security": "tls", "validate_certs": False})
        async with open_context(broken) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 200)
            from newsletter.editions.service import start_edition

            edition = await start_edition(context, "daily")
            stopping = asyncio.Event()
            work = asyncio.create_task(worker_for(context, only={edition.id}).run(stopping))
            before = REGISTRY.get_sample_value("newsletter_smtp_unavailable_total") or 0
            while (REGISTRY.get_sample_value("newsletter_smtp_unavailable_total") or 0) < before + 20:
                await asyncio.sleep(0.02)
            stopping.set()
            await asyncio.wait_for(work, 30)
            rows = await deliveries(context, edition.id)
        assert handler.count() == 0
        assert Counter(d.status for d in rows) == {"queued": 200}
        assert {d.attempts for d in rows} == {0}
    # Fixed (a server that does speak TLS): the same edition goes out in full.
    with SmtpServer(handler, tls_context=_self_signed(tmp_path), implicit_tls=True) as tls_server:
        fixed = make_settings(
            smtp={**SMTP, "port": tls_server.port, "security": "tls", "validate_certs": False}
        )
        async with open_context(fixed) as context:
            await drain(context, editions={edition.id})
            async with context.db.session() as session:
                sent = await session.scalar(select(func.count()).where(Delivery.status == "sent"))
    assert sent == 200 and handler.count() == 200
