"""scan_once against a real Dovecot: over IMAP and POP3, with TLS and STARTTLS, each message
recorded and then removed (or moved), what is too large left in place, bad settings named."""

from __future__ import annotations

import logging

import pytest

from newsletter.bounces.mailbox import MailboxUnavailable, ScanReport, scan_once
from newsletter.bounces.recorder import BounceRecorder
from newsletter.context import AppContext
from tests.bounces.mailbox import samples
from tests.bounces.mailbox.conftest import USER, Readers, Reconfigure, events
from tests.support.mta import Dovecot
from tests.support.ports import free_port


def fill(dovecot: Dovecot, readers: Readers) -> None:
    """A hard bounce, a complaint and an auto-reply to three readers' VERP addresses, and a
    hard bounce that names none of ours."""
    dovecot.drop(USER, samples.delivered_to(readers.verp(0), samples.corpus(samples.HARD)))
    dovecot.drop(USER, samples.delivered_to(readers.verp(1), samples.corpus(samples.COMPLAINT)))
    dovecot.drop(USER, samples.delivered_to(readers.verp(2), samples.corpus(samples.AUTOREPLY)))
    dovecot.drop(USER, samples.corpus(samples.UNTAGGED_HARD))


@pytest.mark.parametrize(
    ("protocol", "security"),
    [("imap", "tls"), ("imap", "starttls"), ("pop3", "tls"), ("pop3", "starttls")],
)
async def test_each_message_is_recorded_then_deleted(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers, protocol: str, security: str
) -> None:
    context = reading(protocol=protocol, security=security)
    fill(dovecot, readers)

    report = await scan_once(context, BounceRecorder(context))

    assert report == ScanReport(handled=4, recorded=3, ignored=1)
    assert dovecot.stored(USER) == []
    assert await readers.statuses() == ["bounced", "unsubscribed", "active"]
    assert await readers.bounces() == ["hard", "complaint", None]
    rows = [row.id for row in readers.rows]
    assert await events(context) == [
        ("hard", "bounced", "verp", rows[0]),
        ("complaint", "unsubscribed", "verp", rows[1]),
        ("hard", "unmatched", None, None),
    ]
    assert report.summary() == "handled 4 (3 recorded, 0 already recorded, 1 ignored); 0 left in the mailbox"
    assert await scan_once(context, BounceRecorder(context)) == ScanReport()


async def test_imap_moves_handled_messages_to_the_processed_folder(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers
) -> None:
    context = reading(processed_folder="Processed")
    fill(dovecot, readers)
    before = sorted(dovecot.stored(USER))

    report = await scan_once(context, BounceRecorder(context))

    assert (report.handled, report.left) == (4, 0)
    assert dovecot.stored(USER) == []
    assert sorted(dovecot.stored(USER, "Processed")) == before


async def test_the_header_of_the_returned_digest_names_the_delivery(
    context: AppContext, dovecot: Dovecot, readers: Readers
) -> None:
    dovecot.drop(USER, samples.dsn_with_header(readers.tag(1)))

    report = await scan_once(context, BounceRecorder(context))

    assert report.recorded == 1
    assert await events(context) == [("hard", "bounced", "header", readers.rows[1].id)]
    assert await readers.statuses() == ["active", "bounced", "active"]


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
async def test_a_message_over_the_size_limit_stays_unread_and_is_warned_about_once(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="newsletter")
    context = reading(protocol=protocol, max_message_bytes=4096, batch_size=1)
    huge = samples.delivered_to(readers.verp(0), samples.corpus(samples.HARD) + b"\n" + b"x" * 8000 + b"\n")
    dovecot.drop(USER, huge)
    dovecot.drop(USER, samples.delivered_to(readers.verp(1), samples.corpus(samples.COMPLAINT)))
    recorder = BounceRecorder(context)

    report = await scan_once(context, recorder)

    assert report == ScanReport(handled=1, recorded=1, left=1)
    assert [len(raw) for raw in dovecot.stored(USER)] == [len(huge)]
    assert await readers.statuses() == ["active", "unsubscribed", "active"]
    warned = [r for r in caplog.records if r.getMessage() == "bounce.mailbox.too_large"]
    assert [getattr(r, "event_fields", {})["setting"] for r in warned] == [
        "bounces.mailbox.max_message_bytes"
    ]


async def test_a_batch_takes_the_oldest_and_says_more_are_waiting(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers
) -> None:
    context = reading(batch_size=3)
    fill(dovecot, readers)

    first = await scan_once(context, BounceRecorder(context))
    second = await scan_once(context, BounceRecorder(context))

    assert (first.handled, first.more, second.handled, second.more) == (3, True, 1, False)
    assert [kind for kind, *_ in await events(context)] == ["hard", "complaint", "hard"]


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
async def test_a_wrong_password_is_one_line_naming_the_setting(
    reading: Reconfigure, dovecot: Dovecot, protocol: str
) -> None:
    context = reading(protocol=protocol, password="not-the-password")
    dovecot.drop(USER, samples.corpus(samples.HARD))

    with pytest.raises(MailboxUnavailable) as raised:
        await scan_once(context, BounceRecorder(context))

    message = str(raised.value)
    assert raised.value.setting == "bounces.mailbox.password"
    assert message.startswith(
        "bounces.mailbox.password: 127.0.0.1 refused the login of 'bounces@readers.example'"
    )
    assert "\n" not in message and "not-the-password" not in message
    assert len(dovecot.stored(USER)) == 1


@pytest.mark.parametrize(
    ("section", "setting"),
    [
        ({"port": "free"}, "bounces.mailbox.port"),
        ({"security": "tls", "port": "plain"}, "bounces.mailbox.port"),
        ({"ca_file": None}, "bounces.mailbox.ca_file"),
        ({"folder": "No Such Folder"}, "bounces.mailbox.folder"),
    ],
    ids=["nothing-listening", "tls-to-the-plain-port", "untrusted-certificate", "missing-folder"],
)
async def test_other_bad_settings_are_named(
    reading: Reconfigure, dovecot: Dovecot, section: dict[str, object], setting: str
) -> None:
    ports = {"free": free_port(), "plain": dovecot.imap_port}
    if "port" in section:
        section = {**section, "port": ports[str(section["port"])]}
    context = reading(**section)

    with pytest.raises(MailboxUnavailable) as raised:
        await scan_once(context, BounceRecorder(context))

    assert raised.value.setting == setting
    assert str(raised.value).startswith(setting + ": ") and "\n" not in str(raised.value)
