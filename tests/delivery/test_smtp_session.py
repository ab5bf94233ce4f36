"""The SMTP session against real aiosmtpd servers: replies, drops, TLS, AUTH, dot-stuffing."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from newsletter.config import SmtpConfig
from newsletter.delivery.smtp import SmtpConnectionLost, SmtpSession, SmtpUnavailable, dot_stuff
from tests.support.ports import free_port
from tests.support.smtp import FaultyMailbox, Mailbox, SmtpServer
from tests.support.tls import make_certificates

MESSAGE = (
    b"From: London Daily <briefing@londondaily.example>\r\nTo: reader@readers.example\r\n"
    b"Subject: test\r\nMessage-ID: <t.1@londondaily.example>\r\n\r\n"
    b"Hello.\r\n.a line starting with a dot\r\n..two dots\r\n.\r\nend\r\n"
)


def config(port: int, **extra: object) -> SmtpConfig:
    return SmtpConfig.model_validate({"host": "127.0.0.1", "port": port, "timeout": 2, **extra})


def test_dot_stuffing() -> None:
    assert dot_stuff(b".x\r\ny\r\n.\r\n") == b"..x\r\ny\r\n..\r\n.\r\n"
    assert dot_stuff(b"no end") == b"no end\r\n.\r\n"


async def test_sends_and_keeps_the_message_intact(smtp_server: SmtpServer) -> None:
    session = SmtpSession(config(smtp_server.port))
    await session.open()
    for n in range(3):
        reply = await session.send(f"r{n}@readers.example", MESSAGE)
        assert (reply.code, reply.stage) == (250, "body")
    await session.close()
    received = smtp_server.handler.messages()
    assert [r.rcpt_tos for r in received] == [[f"r{n}@readers.example"] for n in range(3)]
    assert all(r.data.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n") == MESSAGE for r in received)
    assert received[0].mail_from == "briefing@londondaily.example"
    assert smtp_server.handler.connections == 1


async def test_a_body_stuffed_already_goes_as_it_is(smtp_server: SmtpServer) -> None:
    session = SmtpSession(config(smtp_server.port))
    await session.open()
    reply = await session.send("r@readers.example", dot_stuff(MESSAGE), dot_stuffed=True)
    await session.close()
    assert (reply.code, reply.stage) == (250, "body")
    [received] = smtp_server.handler.messages()
    assert received.data.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n") == MESSAGE


async def test_refused_recipient_is_a_reply_and_the_session_goes_on() -> None:
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: "550 5.1.1 no such user" if "bad" in address else None
    )
    with SmtpServer(handler) as server:
        session = SmtpSession(config(server.port))
        await session.open()
        refused = await session.send("bad@readers.example", MESSAGE)
        accepted = await session.send("good@readers.example", MESSAGE)
        await session.close()
    assert (refused.code, refused.stage) == (550, "rcpt")
    assert (accepted.code, accepted.stage) == (250, "body")
    assert handler.recipients() == ["good@readers.example"]


async def test_temporary_refusal_after_data() -> None:
    handler = FaultyMailbox(data=lambda rcpts: "451 4.3.0 try again later")
    with SmtpServer(handler) as server:
        session = SmtpSession(config(server.port))
        await session.open()
        reply = await session.send("r@readers.example", MESSAGE)
        await session.close()
    assert (reply.code, reply.stage) == (451, "body")


async def test_connection_dropped_during_data_raises() -> None:
    handler = FaultyMailbox(drop_during_data=lambda rcpts: True)
    with SmtpServer(handler) as server:
        session = SmtpSession(config(server.port))
        await session.open()
        with pytest.raises(SmtpConnectionLost):
            await session.send("r@readers.example", MESSAGE)
        assert not session.connected
        await session.close()


async def test_slow_server_times_out() -> None:
    handler = FaultyMailbox(delay=3)
    with SmtpServer(handler) as server:
        session = SmtpSession(config(server.port, timeout=0.5))
        await session.open()
        with pytest.raises(SmtpConnectionLost):
            await session.send("r@readers.example", MESSAGE)
        await session.close()


async def test_server_down_is_unavailable_not_a_message_failure() -> None:
    session = SmtpSession(config(free_port()))
    with pytest.raises(SmtpUnavailable):
        await session.open()


async def test_reconnect_after_configured_number_of_messages(smtp_server: SmtpServer) -> None:
    session = SmtpSession(config(smtp_server.port, messages_per_connection=2))
    await session.open()
    await session.send("a@readers.example", MESSAGE)
    assert not session.due_for_reconnect()
    await session.send("b@readers.example", MESSAGE)
    assert session.due_for_reconnect()
    await session.close()


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate no client here trusts (its CA is not installed)."""
    files = make_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


async def test_starttls_with_auth(tmp_path: Path) -> None:
    server = SmtpServer(
        Mailbox(), tls_context=_self_signed(tmp_path), require_starttls=True, auth={"news": "pw"}
    )
    with server:
        session = SmtpSession(
            config(server.port, security="starttls", validate_certs=False, username="news", password="pw")
        )
        await session.open()
        reply = await session.send("r@readers.example", MESSAGE)
        await session.close()
    assert reply.code == 250
    assert server.handler.count() == 1


async def test_wrong_password_is_unavailable(tmp_path: Path) -> None:
    server = SmtpServer(
        Mailbox(), tls_context=_self_signed(tmp_path), require_starttls=True, auth={"news": "pw"}
    )
    with server:
        session = SmtpSession(
            config(server.port, security="starttls", validate_certs=False, username="news", password="wrong")
        )
        with pytest.raises(SmtpUnavailable, match="535"):
            await session.open()


async def test_implicit_tls(tmp_path: Path) -> None:
    with SmtpServer(Mailbox(), tls_context=_self_signed(tmp_path), implicit_tls=True) as server:
        session = SmtpSession(config(server.port, security="tls", validate_certs=False))
        await session.open()
        reply = await session.send("r@readers.example", MESSAGE)
        await session.close()
    assert reply.code == 250


async def test_tls_handshake_failure_is_unavailable(tmp_path: Path) -> None:
    # A plain-text server spoken to with implicit TLS: the handshake fails.
    with SmtpServer(Mailbox()) as server:
        session = SmtpSession(config(server.port, security="tls", validate_certs=False))
        with pytest.raises(SmtpUnavailable):
            await session.open()


async def test_untrusted_certificate_is_refused_when_validating(tmp_path: Path) -> None:
    with SmtpServer(Mailbox(), tls_context=_self_signed(tmp_path), implicit_tls=True) as server:
        session = SmtpSession(config(server.port, security="tls", validate_certs=True))
        with pytest.raises(SmtpUnavailable):
            await session.open()


async def test_without_pipelining_commands_go_one_by_one() -> None:
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: "550 5.1.1 unknown" if address.startswith("bad") else None,
        pipelining=False,
    )
    with SmtpServer(handler) as server:
        session = SmtpSession(config(server.port))
        await session.open()
        assert not session.pipelining
        refused = await session.send("bad@readers.example", MESSAGE)
        accepted = await session.send("good@readers.example", MESSAGE)
        await session.close()
    assert (refused.code, refused.stage) == (550, "rcpt")
    assert (accepted.code, accepted.stage) == (250, "body")
    assert handler.recipients() == ["good@readers.example"]


async def test_pipelined_refusal_leaves_the_session_usable() -> None:
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: "550 5.1.1 unknown" if address.startswith("bad") else None
    )
    with SmtpServer(handler) as server:
        session = SmtpSession(config(server.port))
        await session.open()
        assert session.pipelining
        refused = await session.send("bad@readers.example", MESSAGE)
        with pytest.raises(ValueError):
            await session.send("space in@readers.example", MESSAGE)
        accepted = await session.send("good@readers.example", MESSAGE)
        await session.close()
    assert (refused.code, refused.stage) == (550, "rcpt")
    assert (accepted.code, accepted.stage) == (250, "body")
    assert handler.recipients() == ["good@readers.example"]
