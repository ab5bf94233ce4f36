"""An edition through real mail software: Debian's Postfix as the relay (STARTTLS, SASL login
through Dovecot), handing on to Dovecot over LMTP into Maildirs. Each reader's message arrives
once, whole, with its headers; a wrong password or a certificate the system does not trust stops
the worker naming the setting, before any reader's message is tried."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from newsletter.context import AppContext, open_context
from newsletter.database.models import Delivery, Subscriber
from newsletter.delivery.worker import ConfigurationFault
from newsletter.editions.sending import drain, worker_for
from newsletter.editions.service import start_edition
from tests.conftest import SettingsFactory
from tests.support.factories import add_articles, add_subscribers
from tests.support.mta import MailSystem, mail_system

pytestmark = pytest.mark.slow

USER, PASSWORD = "newsletter", "right-password"
READERS = 6
FAST = {"retry_base_seconds": 0.05, "retry_max_seconds": 0.2, "server_down_max_backoff": 0.5}
UNSUBSCRIBE_URL = re.compile(r"<https?://[^\s<>]+/unsubscribe/[^\s<>]+>")

Ledger = dict[str, tuple[str, int, str | None]]  # address: status, attempts, Message-ID


@pytest.fixture
def mail() -> Iterator[MailSystem]:
    with mail_system({USER: PASSWORD}) as system:
        yield system


def submission(mail: MailSystem, **changes: Any) -> dict[str, Any]:
    """[smtp] for Postfix's submission port as an operator would set it: STARTTLS, validated
    against the test CA, and a Dovecot user's login."""
    smtp = {
        "host": "127.0.0.1",
        "port": mail.postfix.port,
        "security": "starttls",
        "validate_certs": True,
        "ca_file": str(mail.tls.ca),
        "username": USER,
        "password": PASSWORD,
        "timeout": 30,
    }
    return smtp | changes


async def ledger(context: AppContext, edition_id: int) -> Ledger:
    async with context.db.session() as session:
        rows = await session.execute(
            select(Subscriber.email, Delivery.status, Delivery.attempts, Delivery.message_id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.edition_id == edition_id)
        )
        # (An erased reader's address is gone; none is erased here.)
        return {
            str(address): (status, attempts, message_id) for address, status, attempts, message_id in rows
        }


async def stopped_worker(context: AppContext, readers: int) -> tuple[ConfigurationFault, Ledger]:
    """Start an edition for `readers` and run a worker on it until it stops; why, and the ledger."""
    await add_articles(context, 2)
    await add_subscribers(context, readers)
    edition = await start_edition(context, "daily")
    service_stopping = asyncio.Event()
    with pytest.raises(ConfigurationFault) as stopped:
        await asyncio.wait_for(worker_for(context, only={edition.id}).run(service_stopping), 120)
    assert not service_stopping.is_set()
    return stopped.value, await ledger(context, edition.id)


async def test_an_edition_reaches_each_mailbox_once_with_its_headers(
    make_settings: SettingsFactory, mail: MailSystem
) -> None:
    settings = make_settings(smtp=submission(mail), delivery=FAST)
    async with open_context(settings) as context:
        await add_articles(context, 3)
        await add_subscribers(context, READERS)
        edition = await start_edition(context, "daily")
        await drain(context, editions={edition.id})
        rows = await ledger(context, edition.id)
    assert len(rows) == READERS
    unsubscribe_urls = set()
    for address, (status, attempts, message_id) in rows.items():
        assert (status, attempts) == ("sent", 1)
        [message] = mail.delivered(address)
        assert message["Message-ID"] == message_id
        assert message["Delivered-To"] == address and address in message["To"]
        assert UNSUBSCRIBE_URL.fullmatch(message["List-Unsubscribe"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # Postfix took it over TLS from a logged-in client (ESMTPSA), then Dovecot over LMTP.
        assert [" with ESMTPSA " in hop for hop in message.get_all("Received", [])] == [False, True]
        unsubscribe_urls.add(message["List-Unsubscribe"])
    assert len(unsubscribe_urls) == READERS
    assert mail.dovecot.mailboxes() == set(rows)


async def test_a_wrong_password_stops_sending_without_a_retry_loop(
    make_settings: SettingsFactory, mail: MailSystem
) -> None:
    settings = make_settings(smtp=submission(mail, password="wrong-password"), delivery=FAST)
    async with open_context(settings) as context:
        fault, rows = await stopped_worker(context, 20)
    assert "smtp.password" in str(fault)
    assert Counter((status, attempts) for status, attempts, _ in rows.values()) == {("queued", 0): 20}
    # A login refused on each connection the worker opened, not on one per message or per retry:
    # accounts get locked after a few dozen.
    connections, refused = mail.postfix.connections_refused_login(), mail.postfix.failed_logins()
    assert 1 <= connections <= settings.smtp.concurrency
    assert refused <= settings.smtp.concurrency, f"{refused} logins refused on {connections} connections"
    mail.settle()
    assert mail.dovecot.mailboxes() == set()


async def test_a_certificate_the_system_does_not_trust_stops_sending_before_login(
    make_settings: SettingsFactory, mail: MailSystem
) -> None:
    settings = make_settings(smtp=submission(mail, ca_file=None), delivery=FAST)
    async with open_context(settings) as context:
        fault, rows = await stopped_worker(context, 5)
    assert "smtp.validate_certs" in str(fault)
    assert Counter((status, attempts) for status, attempts, _ in rows.values()) == {("queued", 0): 5}
    # The password never went to a server whose certificate was refused.
    assert not [line for line in mail.postfix.log_lines() if "sasl_" in line or "SASL" in line]
    mail.settle()
    assert mail.dovecot.mailboxes() == set()
