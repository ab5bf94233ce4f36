"""The bounce receiver over real SMTP (aiosmtplib to the receiver on a loopback port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import func, select

from newsletter.bounces.receiver import RateWindow, start_receiver
from newsletter.bounces.recorder import BounceRecorder
from newsletter.context import AppContext, open_context
from newsletter.database.engine import open_database
from newsletter.database.models import BounceEvent, Delivery, Subscriber
from newsletter.editions.sending import drain
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.states import SubscriberStatus
from tests.conftest import SettingsFactory
from tests.support.editions import deliveries
from tests.support.factories import add_articles, add_subscribers
from tests.support.ports import free_port
from tests.support.postfix_bouncer import BouncingRelay, bouncing_relay
from tests.support.smtp import FaultyMailbox, SmtpServer

BOUNCE_DOMAIN = "bounce.londondaily.example"
CORPUS = Path(__file__).parent / "corpus"


@dataclass
class Receiving:
    context: AppContext
    port: int
    tags: BounceTags


@pytest.fixture
async def receiving(make_settings: SettingsFactory) -> AsyncIterator[Receiving]:
    settings = make_settings(
        bounces={
            "domain": BOUNCE_DOMAIN,
            "port": 0,
            "max_message_bytes": 256 * 1024,
            "max_messages_per_minute": 50,
        }
    )
    async with open_context(settings) as context:
        server = await start_receiver(settings, BounceRecorder(context))
        try:
            yield Receiving(context, server.sockets[0].getsockname()[1], BounceTags(settings))
        finally:
            server.close()
            await server.wait_closed()


async def _edition_rows(context: AppContext, count: int) -> list[Delivery]:
    from newsletter.editions.service import start_edition

    await add_articles(context, 3)
    await add_subscribers(context, count)
    edition = await start_edition(context, "daily")
    return await deliveries(context, edition.id)


def _dsn(recipient: str, status: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.readers.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.readers.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} user unknown\r\n\r\n--b--\r\n"
    ).encode()


async def _send(port: int, recipients: list[str], data: bytes) -> tuple[dict[str, object], str]:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as smtp:
        errors, reply = await smtp.sendmail("", recipients, data)
    return dict(errors), reply


async def _statuses(context: AppContext) -> dict[int, str]:
    async with context.db.session() as session:
        return {s.id: s.status for s in (await session.scalars(select(Subscriber))).all()}


async def _event_count(context: AppContext) -> int:
    async with context.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(BounceEvent)) or 0)


async def test_a_dsn_to_a_verp_address_bounces_its_reader(receiving: Receiving) -> None:
    first, second = await _edition_rows(receiving.context, 2)
    address = receiving.tags.return_path(TagKind.DELIVERY, first.id)

    await _send(receiving.port, [address], _dsn("reader1@readers.example", "5.1.1"))
    await _send(receiving.port, [address], _dsn("reader1@readers.example", "5.1.1"))  # sent twice

    statuses = await _statuses(receiving.context)
    assert statuses[first.subscriber_id] == SubscriberStatus.BOUNCED
    assert statuses[second.subscriber_id] == SubscriberStatus.ACTIVE
    assert await _event_count(receiving.context) == 1


async def test_only_verp_addresses_and_the_bounce_address_are_accepted(receiving: Receiving) -> None:
    [row] = await _edition_rows(receiving.context, 1)
    genuine = receiving.tags.return_path(TagKind.DELIVERY, row.id)
    forged = genuine.replace(f"d{row.id}-", f"d{row.id + 1}-")
    other_domain = genuine.replace(BOUNCE_DOMAIN, "elsewhere.example")
    for refused in (forged, other_domain, f"postmaster@{BOUNCE_DOMAIN}"):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
            await _send(receiving.port, [refused], _dsn("reader1@readers.example", "5.1.1"))
        assert caught.value.recipients[0].code == 550
    complaint = (CORPUS / "complaint-abusix-01.eml").read_bytes()
    errors, _ = await _send(receiving.port, [f"bounces@{BOUNCE_DOMAIN}"], complaint)
    assert errors == {}
    assert (await _statuses(receiving.context))[row.subscriber_id] == SubscriberStatus.ACTIVE
    async with receiving.context.db.session() as session:
        outcomes = (await session.scalars(select(BounceEvent.outcome))).all()
    assert outcomes == ["unmatched"]  # the corpus report is about somebody else's message


async def test_an_oversized_message_is_refused_and_changes_nothing(receiving: Receiving) -> None:
    [row] = await _edition_rows(receiving.context, 1)
    address = receiving.tags.return_path(TagKind.DELIVERY, row.id)
    huge = (
        _dsn("reader1@readers.example", "5.1.1") + b"x" * 998 + b"\r\n" * 300 + (b"y" * 900 + b"\r\n") * 400
    )
    with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
        await _send(receiving.port, [address], huge)
    assert caught.value.code == 552
    assert await _event_count(receiving.context) == 0
    assert (await _statuses(receiving.context))[row.subscriber_id] == SubscriberStatus.ACTIVE


async def test_a_malformed_message_is_recorded_as_unmatched(receiving: Receiving) -> None:
    [row] = await _edition_rows(receiving.context, 1)
    address = receiving.tags.return_path(TagKind.DELIVERY, row.id)
    errors, _ = await _send(receiving.port, [address], b"\x00\xff garbage without headers\r\n")
    assert errors == {}
    async with receiving.context.db.session() as session:
        [event] = (await session.scalars(select(BounceEvent))).all()
    # The envelope named the delivery, but nothing in the message says what happened.
    assert (event.kind, event.outcome) == ("unknown", "unchanged")
    assert (await _statuses(receiving.context))[row.subscriber_id] == SubscriberStatus.ACTIVE


async def test_a_database_that_is_down_gets_451_so_the_sender_keeps_the_report(
    make_settings: SettingsFactory,
) -> None:
    down = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    settings = make_settings(database={"url": down}, bounces={"domain": BOUNCE_DOMAIN, "port": 0})
    unreachable = open_database(settings.database)
    recorder = BounceRecorder(AppContext(settings, unreachable))
    server = await start_receiver(settings, recorder)
    try:
        address = BounceTags(settings).return_path(TagKind.DELIVERY, 1)
        with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
            await _send(server.sockets[0].getsockname()[1], [address], _dsn("r@readers.example", "5.1.1"))
        assert caught.value.code == 451
    finally:
        server.close()
        await server.wait_closed()
        await recorder.close()
        await unreachable.dispose()


def test_the_rate_window_admits_a_minute_s_share_per_client() -> None:
    window = RateWindow(3)
    assert [window.admit("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert window.admit("b", now=3)
    assert window.admit("a", now=61)  # the first has left the window


async def test_a_flood_from_one_client_is_told_to_slow_down(receiving: Receiving) -> None:
    [row] = await _edition_rows(receiving.context, 1)
    address = receiving.tags.return_path(TagKind.DELIVERY, row.id)
    codes = []
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiving.port, timeout=10) as smtp:
        for n in range(51):
            try:
                await smtp.sendmail("", [address], _dsn(f"r{n}@readers.example", "4.2.2"))
                codes.append(250)
            except aiosmtplib.SMTPResponseException as error:
                codes.append(error.code)
                break
    assert codes[:50] == [250] * 50 and codes[50] == 421


async def test_postfix_s_own_bounce_reaches_the_receiver_and_the_reader(
    make_settings: SettingsFactory,
) -> None:
    """The whole loop with real software: our worker sends through Postfix, Postfix fails the
    message and mails its DSN to the VERP envelope sender, which it relays to the receiver."""
    receiver_port = free_port()
    refusing = FaultyMailbox(rcpt=lambda address, attempt: "550 5.1.1 <" + address + ">: mailbox unavailable")
    with (
        SmtpServer(refusing) as dead,
        bouncing_relay(
            dead_domain="readers.example",
            dead_port=dead.port,
            bounce_domain=BOUNCE_DOMAIN,
            receiver_port=receiver_port,
        ) as relay,
    ):
        settings = make_settings(
            smtp={"host": "127.0.0.1", "port": relay.port},
            bounces={"domain": BOUNCE_DOMAIN, "port": receiver_port},
        )
        async with open_context(settings) as context:
            server = await start_receiver(settings, BounceRecorder(context))
            try:
                rows = await _edition_rows(context, 2)
                await drain(context, editions={rows[0].edition_id})
                events = await _wait_for_events(context, 2, relay)
            finally:
                server.close()
                await server.wait_closed()
            statuses = await _statuses(context)
    assert (
        sorted((e.kind, e.status, e.matched_by, e.outcome) for e in events)
        == [("hard", "5.1.1", "verp", "bounced")] * 2
    )
    assert {statuses[row.subscriber_id] for row in rows} == {SubscriberStatus.BOUNCED}
    assert all("mailbox unavailable" in (e.diagnostic or "") for e in events)


async def _wait_for_events(context: AppContext, count: int, relay: BouncingRelay) -> list[BounceEvent]:
    """The bounce events, once `count` have arrived (Postfix works at its own pace)."""
    for _ in range(600):
        async with context.db.session() as session:
            found = list((await session.scalars(select(BounceEvent))).all())
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} bounces never arrived; Postfix said:\n{relay.log[-3000:]}")
