"""Several SMTP relays: the work is shared by weight, a relay that goes away mid-edition is taken
out of rotation and the others carry the edition, every reader gets it once, and the ledger
records which relay carried each message. A relay that refuses our configuration (a wrong
password) is never retried with it, and when every relay does, sending stops with one line."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from newsletter.context import open_context
from newsletter.database.models import Delivery
from newsletter.delivery.store import enqueue_confirmations
from newsletter.delivery.worker import ConfigurationFault
from newsletter.editions.sending import drain, worker_for
from newsletter.editions.service import start_edition
from tests.conftest import SettingsFactory
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter
from tests.support.smtp import FaultyMailbox, Mailbox, SmtpServer

FAST = {"retry_base_seconds": 0.05, "retry_max_seconds": 0.2, "server_down_max_backoff": 0.5}


def relay(name: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": port, "security": "none", "concurrency": 2, **extra}


async def relays_of(context: Any, edition_id: int) -> Counter[tuple[str, str | None]]:
    async with context.db.session() as session:
        rows = (
            await session.execute(
                select(Delivery.status, Delivery.relay).where(Delivery.edition_id == edition_id)
            )
        ).all()
    return Counter((status, relay_name) for status, relay_name in rows)


async def test_two_relays_share_an_edition_by_weight(make_settings: SettingsFactory) -> None:
    with SmtpServer(Mailbox()) as heavy, SmtpServer(Mailbox()) as light:
        settings = make_settings(
            smtp={"relays": [relay("heavy", heavy.port, weight=3), relay("light", light.port)]}, delivery=FAST
        )
        async with open_context(settings) as context:
            await add_articles(context, 3)
            await add_subscribers(context, 200)
            edition = await start_edition(context, "daily")
            await drain(context, editions={edition.id})
            carried = await relays_of(context, edition.id)
        assert carried[("sent", "heavy")] + carried[("sent", "light")] == 200
        assert carried[("sent", "heavy")] > carried[("sent", "light")] > 0
        assert heavy.handler.count() == carried[("sent", "heavy")]
        assert light.handler.count() == carried[("sent", "light")]


async def test_a_relay_gone_mid_edition_leaves_the_others_to_carry_it(make_settings: SettingsFactory) -> None:
    going = Mailbox()
    staying = Mailbox()
    with SmtpServer(going) as first, SmtpServer(staying) as second:
        settings = make_settings(
            smtp={"relays": [relay("first", first.port), relay("second", second.port)]}, delivery=FAST
        )
        async with open_context(settings) as context:
            await add_articles(context, 3)
            await add_subscribers(context, 600)
            edition = await start_edition(context, "daily")
            work = asyncio.create_task(drain(context, editions={edition.id}))
            while going.count() < 50:
                await asyncio.sleep(0.01)
            first.stop()
            await asyncio.wait_for(work, 120)
            carried = await relays_of(context, edition.id)
    received = Counter(r for box in (going, staying) for m in box.messages() for r in m.rcpt_tos)
    # Every reader got it. A message whose reply the stopped server never sent (at most one per
    # connection it had) may have reached that server and gone again through the other relay,
    # with the same Message-ID, as after any dropped connection.
    assert len(received) == 600
    assert (
        sum(count - 1 for count in received.values()) <= settings.smtp.relay_settings()[0].config.concurrency
    )
    assert sum(count for (status, _), count in carried.items() if status == "sent") == 600
    assert carried[("sent", "first")] == going.count() and carried[("sent", "second")] == staying.count()
    assert staying.count() > 300


async def test_a_newsletter_uses_only_its_own_relays(make_settings: SettingsFactory) -> None:
    with SmtpServer(Mailbox()) as ours, SmtpServer(Mailbox()) as theirs:
        settings = make_settings(
            smtp={"relays": [relay("ours", ours.port), relay("theirs", theirs.port)]},
            newsletters=[{"id": "daily", "name": "Daily", "relays": ["ours"]}],
            delivery=FAST,
        )
        async with open_context(settings) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 40)
            edition = await start_edition(context, "daily")
            await drain(context, editions={edition.id})
            assert await relays_of(context, edition.id) == {("sent", "ours"): 40}
        assert theirs.handler.count() == 0


async def test_a_refused_password_stops_sending_and_fails_nobody(make_settings: SettingsFactory) -> None:
    """535 is not "the server is down": it is never retried (24 failed logins in 40 s were enough
    to lock accounts), no message fails or spends an attempt, and the worker stops naming the
    setting."""
    with SmtpServer(Mailbox(), auth={"newsletter": "right-password"}) as server:
        smtp = {"port": server.port, "username": "newsletter", "password": "wrong-password"}
        settings = make_settings(smtp=smtp, delivery=FAST)
        async with open_context(settings) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 30)
            edition = await start_edition(context, "daily")
            worker = worker_for(context, only={edition.id})
            service_stopping = asyncio.Event()
            with pytest.raises(ConfigurationFault) as stopped:
                await asyncio.wait_for(worker.run(service_stopping), 60)
            # The worker stopped; the service it runs in (web app, scheduler) did not.
            assert not service_stopping.is_set()
            async with context.db.session() as session:
                rows = (await session.execute(select(Delivery.status, Delivery.attempts))).all()
        assert "smtp.password" in str(stopped.value)
        assert Counter(tuple(row) for row in rows) == {("queued", 0): 30}
        # One login per connection that tried, not a retry loop.
        assert server.handler.connections <= settings.smtp.concurrency


async def test_send_exits_1_with_the_setting_to_fix(make_settings: SettingsFactory, tmp_path: Path) -> None:
    with SmtpServer(Mailbox(), auth={"newsletter": "right-password"}) as server:
        settings = make_settings(smtp={"port": server.port, "username": "newsletter", "password": "nope"})
        async with open_context(settings) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 3)
        env = environment_for(
            settings, NEWSLETTER_SMTP__USERNAME="newsletter", NEWSLETTER_SMTP__PASSWORD="nope"
        )
        result = newsletter("send", cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 1
    assert "smtp.password" in result.stderr and result.stderr.count("error:") == 1
    assert "Traceback" not in result.stdout + result.stderr


async def test_one_misconfigured_relay_of_two_is_left_out(make_settings: SettingsFactory) -> None:
    with SmtpServer(Mailbox(), auth={"u": "right"}) as locked, SmtpServer(Mailbox()) as open_relay:
        relays = [
            relay("locked", locked.port, username="u", password="wrong"),
            relay("open", open_relay.port),
        ]
        settings = make_settings(smtp={"relays": relays}, delivery=FAST)
        async with open_context(settings) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 50)
            edition = await start_edition(context, "daily")
            await drain(context, editions={edition.id})
            assert await relays_of(context, edition.id) == {("sent", "open"): 50}
        assert locked.handler.count() == 0 and locked.handler.connections <= 2


async def test_a_relay_refusing_our_sender_is_left_out_and_nobody_fails(
    make_settings: SettingsFactory,
) -> None:
    """A 5xx to MAIL FROM (530 authentication required, 550 sender not allowed) would refuse
    every reader alike: the relay is taken out, the other carries the edition, no message fails."""
    refusing = FaultyMailbox(mail=lambda sender: "530 5.7.0 Authentication required")
    with SmtpServer(refusing) as strict, SmtpServer(Mailbox()) as open_relay:
        relays = [relay("strict", strict.port), relay("open", open_relay.port)]
        settings = make_settings(smtp={"relays": relays}, delivery=FAST)
        async with open_context(settings) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 40)
            edition = await start_edition(context, "daily")
            await drain(context, editions={edition.id})
            assert await relays_of(context, edition.id) == {("sent", "open"): 40}
            async with context.db.session() as session:
                attempts = (await session.scalars(select(Delivery.attempts))).all()
        assert set(attempts) == {1}  # a message handed back by the strict relay cost no attempt
    assert open_relay.handler.count() == 40 and strict.handler.count() == 0
    assert 1 <= refusing.faults["mail_refused"] <= 2  # once per connection, then out of rotation


async def test_when_the_only_relay_refuses_our_sender_sending_stops_naming_the_setting(
    make_settings: SettingsFactory,
) -> None:
    refusing = FaultyMailbox(
        mail=lambda sender: "550 5.7.60 Client does not have permission to send as this sender"
    )
    with SmtpServer(refusing) as server:
        settings = make_settings(smtp={"port": server.port}, delivery=FAST)
        async with open_context(settings) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 10)
            edition = await start_edition(context, "daily")
            with pytest.raises(ConfigurationFault, match="smtp.from_address"):
                await asyncio.wait_for(drain(context, editions={edition.id}), 60)
            async with context.db.session() as session:
                rows = (await session.execute(select(Delivery.status, Delivery.attempts))).all()
    assert Counter(tuple(row) for row in rows) == {("queued", 0): 10}


async def test_confirmations_go_through_their_own_relays(make_settings: SettingsFactory) -> None:
    with SmtpServer(Mailbox()) as digests, SmtpServer(Mailbox()) as confirmations:
        relays = [relay("bulk", digests.port), relay("transactional", confirmations.port)]
        settings = make_settings(
            smtp={"relays": relays, "confirmation_relays": ["transactional"]},
            newsletters=[{"id": "daily", "name": "Daily", "relays": ["bulk"]}],
            delivery=FAST,
        )
        async with open_context(settings) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 20)
            pending = await add_subscribers(context, 5, prefix="pending", status="pending")
            async with context.db.session() as session:
                await enqueue_confirmations(session, [(i, "daily") for i in pending])
                await session.commit()
            edition = await start_edition(context, "daily")
            await drain(context, editions={edition.id})
    assert digests.handler.count() == 20 and confirmations.handler.count() == 5
    assert all("confirm" in m.data.decode().lower() for m in confirmations.handler.messages())
