"""One SMTP connection: aiosmtplib connects, negotiates TLS and authenticates; transactions go
through its protocol with bytes that are already CRLF-terminated, so no per-message regex pass."""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from newsletter.config import SmtpConfig
from newsletter.errors import NewsletterError


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str
    # Where the reply came from: mail, rcpt, data or body (the reply to the message itself).
    stage: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class SmtpUnavailable(NewsletterError, ConnectionError):
    """No usable connection: refused, timed out, TLS or authentication failed. No message was tried."""


class SmtpConnectionLost(NewsletterError, ConnectionError):
    """The connection broke or timed out during a transaction: the outcome is unknown."""


def dot_stuff(data: bytes) -> bytes:
    """The DATA payload for `data` (CRLF line endings): leading dots doubled, end marker added."""
    if data.startswith(b"."):
        data = b"." + data
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpSession:
    """A persistent connection, reused for many messages until it breaks or has sent its share."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.sent_on_connection = 0
        self._client: aiosmtplib.SMTP | None = None
        self._sender = config.from_address.encode()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def open(self) -> None:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            validate_certs=config.validate_certs,
            timeout=config.timeout,
            local_hostname=config.helo_name or socket.getfqdn(),
            username=config.username or None,
            password=config.password.get_secret_value() or None,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await self._greet(client)
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            client.close()
            raise SmtpUnavailable(_describe(exc)) from None
        self._client = client
        self.sent_on_connection = 0

    @staticmethod
    async def _greet(client: aiosmtplib.SMTP) -> None:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()

    @property
    def supports_smtputf8(self) -> bool:
        return self._client is not None and self._client.supports_extension("smtputf8")

    def due_for_reconnect(self) -> bool:
        return self.sent_on_connection >= self.config.messages_per_connection

    async def send(self, recipient: str, data: bytes, *, smtputf8: bool = False) -> SmtpReply:
        """One transaction. Refusals come back as replies; a broken connection raises
        SmtpConnectionLost (and the session must be reopened)."""
        protocol = self._protocol()
        timeout = self.config.timeout
        try:
            async with asyncio.timeout(timeout * 2):
                reply = await self._transaction(protocol, recipient, data, smtputf8, timeout)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self.abort()
            raise SmtpConnectionLost(_describe(exc)) from None
        if reply.code == 421:
            # The server is closing the connection (RFC 5321 §3.8).
            self.abort()
        elif reply.stage != "body" or reply.code >= 400:
            await self._reset(protocol)
        self.sent_on_connection += 1
        return reply

    async def _transaction(
        self,
        protocol: SMTPProtocol,
        recipient: str,
        data: bytes,
        smtputf8: bool,
        timeout: float,  # noqa: ASYNC109
    ) -> SmtpReply:
        mail_from = b"FROM:<" + self._sender + b">" + (b" SMTPUTF8" if smtputf8 else b"")
        reply = await protocol.execute_command(b"MAIL", mail_from, timeout=timeout)
        if reply.code != 250:
            return SmtpReply(reply.code, reply.message, "mail")
        rcpt_to = b"TO:<" + recipient.encode("utf-8") + b">"
        reply = await protocol.execute_command(b"RCPT", rcpt_to, timeout=timeout)
        if reply.code not in (250, 251):
            return SmtpReply(reply.code, reply.message, "rcpt")
        reply = await protocol.execute_command(b"DATA", timeout=timeout)
        if reply.code != 354:
            return SmtpReply(reply.code, reply.message, "data")
        protocol.write(dot_stuff(data))
        reply = await protocol.read_response(timeout=timeout)
        return SmtpReply(reply.code, reply.message, "body")

    async def _reset(self, protocol: SMTPProtocol) -> None:
        try:
            reply = await protocol.execute_command(b"RSET", timeout=self.config.timeout)
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            self.abort()
            return
        if reply.code != 250:
            self.abort()

    def _protocol(self) -> SMTPProtocol:
        if self._client is None or not self._client.is_connected or self._client.protocol is None:
            raise SmtpConnectionLost("not connected")
        return self._client.protocol

    async def close(self) -> None:
        """QUIT politely; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit(timeout=min(self.config.timeout, 5))
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()

    def abort(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
