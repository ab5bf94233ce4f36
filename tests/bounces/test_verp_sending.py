"""What a sent message carries for its bounces: a VERP envelope sender and an identifying header,
each naming its own ledger row, and a returned copy that finds its way back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from newsletter.bounces.incoming import BounceSource, from_message
from newsletter.bounces.recorder import BounceRecorder
from newsletter.context import AppContext, open_context
from newsletter.database.models import Message, Subscriber
from newsletter.delivery.store import enqueue_confirmations
from newsletter.editions.sending import drain
from newsletter.editions.service import start_edition
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.states import SubscriberStatus
from tests.conftest import SettingsFactory
from tests.support.editions import EditionFactory, deliveries
from tests.support.factories import add_articles, add_subscribers
from tests.support.smtp import Received, SmtpServer

BOUNCE_DOMAIN = "bounce.londondaily.example"


def _dsn(original: Received, *, status: str = "5.1.1") -> bytes:
    """A returned message as a relay writes it (RFC 3464): to the original's envelope sender,
    with the original's headers attached."""
    original_headers = original.data.split(b"\r\n\r\n", 1)[0].decode()
    return (
        f"From: MAILER-DAEMON@mx.readers.example\r\nTo: {original.mail_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.readers.example\r\n\r\n"
        f"Final-Recipient: rfc822; {original.rcpt_tos[0]}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} no such user\r\n\r\n"
        f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n{original_headers}\r\n--b1--\r\n"
    ).encode()


@pytest.fixture
async def verp_context(make_settings: SettingsFactory) -> AsyncIterator[AppContext]:
    async with open_context(make_settings(bounces={"domain": BOUNCE_DOMAIN})) as context:
        await add_articles(context, 3)
        yield context


async def test_each_message_names_its_own_row_in_envelope_and_header(
    verp_context: AppContext, smtp_server: SmtpServer
) -> None:
    context = verp_context
    await add_subscribers(context, 4)
    [pending] = await add_subscribers(context, 1, status="pending", prefix="new")
    async with context.db.session() as session, session.begin():
        await enqueue_confirmations(session, [(pending, "daily")])
    edition = await start_edition(context, "daily")
    await drain(context, editions={edition.id})
    received = smtp_server.handler.messages()
    rows = {d.message_id: d for d in await deliveries(context, edition.id)}
    async with context.db.session() as session:
        [confirmation] = (await session.scalars(select(Message))).all()
    tags = BounceTags(context.settings)
    digests = [m for m in received if m.message_id in rows]
    assert len(digests) == 4 and len(received) == 5
    for message in digests:
        row = rows[message.message_id]
        assert tags.read_address(message.mail_from) == tags.read(tags.tag(TagKind.DELIVERY, row.id))
        assert message.mail_from.endswith("@" + BOUNCE_DOMAIN)
        assert message.message()["X-Newsletter-Delivery"] == tags.tag(TagKind.DELIVERY, row.id)
    [confirmation_copy] = [m for m in received if m.message_id not in rows]
    expected = tags.read(tags.tag(TagKind.MESSAGE, confirmation.id))
    assert tags.read_address(confirmation_copy.mail_from) == expected
    assert tags.read(confirmation_copy.message()["X-Newsletter-Delivery"]) == expected


async def test_without_bounces_the_envelope_sender_is_the_from_address(
    context: AppContext, smtp_server: SmtpServer, edition_for: EditionFactory
) -> None:
    edition = await edition_for(2)
    await drain(context, editions={edition.id})
    received = smtp_server.handler.messages()
    assert {m.mail_from for m in received} == {context.settings.smtp.from_address}
    rows = {d.message_id: d.id for d in await deliveries(context, edition.id)}
    tags = BounceTags(context.settings)
    assert {m.message()["X-Newsletter-Delivery"] for m in received} == {
        tags.tag(TagKind.DELIVERY, i) for i in rows.values()
    }


async def test_a_returned_copy_finds_its_reader_by_the_envelope_alone(
    verp_context: AppContext, smtp_server: SmtpServer
) -> None:
    context = verp_context
    await add_subscribers(context, 3)
    edition = await start_edition(context, "daily")
    await drain(context, editions={edition.id})
    first = smtp_server.handler.messages()[0]
    bare = EmailMessage()  # a notice with nothing of the original in it: only the VERP address
    bare["From"] = "postmaster@readers.example"
    bare["Subject"] = "Delivery failure"
    bare.set_content(f"550 5.1.1 <{first.rcpt_tos[0]}>: Recipient address rejected: User unknown\n")
    recorded = await BounceRecorder(context).record(
        from_message(BounceSource.RECEIVER, bare.as_bytes(), envelope_recipients=(first.mail_from,))
    )
    full = await BounceRecorder(context).record(
        from_message(BounceSource.MAILBOX, _dsn(smtp_server.handler.messages()[1]))
    )
    async with context.db.session() as session:
        statuses = {s.email: s.status for s in (await session.scalars(select(Subscriber))).all()}
    assert recorded.match is not None and recorded.match.matched_by == "verp"
    assert full.match is not None and full.match.matched_by in ("verp", "header", "message-id")
    bounced = {first.rcpt_tos[0], smtp_server.handler.messages()[1].rcpt_tos[0]}
    assert {a for a, status in statuses.items() if status == SubscriberStatus.BOUNCED} == bounced
