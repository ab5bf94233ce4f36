"""A DKIM-signed edition sent by the worker (payload dot-stuffed on the event loop; RSA
signatures made on the signing threads, Ed25519 alone on the event loop) arrives at a real SMTP
server verifying with dkimpy, every message under its own reader's headers, on SQLite and
PostgreSQL."""

from __future__ import annotations

import email
import re
import threading
from pathlib import Path

import pytest

from newsletter.config import DkimConfig
from newsletter.context import open_context
from newsletter.editions.sending import drain
from newsletter.editions.service import start_edition
from tests.conftest import SettingsFactory
from tests.rendering.test_dkim_signer import dkim_settings, dkimpy, key_files, zone_of
from tests.support.factories import add_articles, add_subscribers
from tests.support.smtp import SmtpServer

__all__ = ["key_files"]  # a fixture, shared


@pytest.mark.parametrize("algorithms", [["rsa-sha256"], ["ed25519-sha256"], ["rsa-sha256", "ed25519-sha256"]])
async def test_every_message_of_a_signed_send_verifies(
    make_settings: SettingsFactory,
    smtp_server: SmtpServer,
    key_files: dict[str, Path],
    algorithms: list[str],
) -> None:
    settings = make_settings(dkim=dkim_settings(key_files, algorithms), smtp={"concurrency": 4})
    async with open_context(settings) as context:
        await add_articles(context, 6)
        await add_subscribers(context, 40)
        edition = await start_edition(context, "daily")
        stats = await drain(context, editions={edition.id})
    assert stats.sent == 40
    verify = dkimpy(zone_of(DkimConfig.model_validate(dkim_settings(key_files, algorithms))))
    received = smtp_server.handler.messages()
    assert len(received) == 40
    for message in received:
        data = message.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert len(re.findall(rb"^DKIM-Signature:", data, re.MULTILINE)) == len(algorithms)
        assert email.message_from_bytes(data)["To"] == message.rcpt_tos[0]
        assert verify(data)
    assert not [t for t in threading.enumerate() if t.name.startswith("dkim-")], (
        "signing threads left running"
    )
