"""One SMTP connection. aiosmtplib connects, negotiates TLS and authenticates; then the session
takes the connection over to run message transactions itself, pipelining MAIL, RCPT and DATA
(RFC 2920) when the server offers it: two round trips per message instead of four, and bytes
that are already CRLF-terminated go out with no per-message regex pass."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import cast

import aiosmtplib

from newsletter.config import SmtpConfig
from newsletter.errors import NewsletterError

# Replies longer than this are a protocol violation (RFC 5321 allows 512 octets a line).
MAX_REPLY_BYTES = 64 * 1024


class ReplyCode(IntEnum):
    """The SMTP reply codes this service acts on (RFC 5321 §4.2.3); others are read by class."""

    OK = 250
    WILL_FORWARD = 251
    START_INPUT = 354
    CLOSING = 421  # the server is closing the connection
    MAILBOX_BUSY = 450
    LOCAL_ERROR = 451
    NO_STORAGE = 452
    AUTH_REQUIRED = 530
    AUTH_FAILED = 535
    MAILBOX_UNAVAILABLE = 550
    USER_NOT_LOCAL = 551
    STORAGE_EXCEEDED = 552
    MAILBOX_NAME_INVALID = 553
    TRANSACTION_FAILED = 554


ACCEPTED = (ReplyCode.OK,)
RECIPIENT_OK = (ReplyCode.OK, ReplyCode.WILL_FORWARD)
GO_AHEAD = (ReplyCode.START_INPUT,)


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str
    # Where the reply came from: mail, rcpt, data or body (the reply to the message itself).
    stage: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class OpenFailure(StrEnum):
    """What went wrong while opening a connection (what it means is delivery.decisions' to say)."""

    UNREACHABLE = "unreachable"  # refused, timed out, dropped, or the TLS handshake failed
    LOGIN_REFUSED = "login refused"  # AUTH answered with an error (`code` tells which)
    CERTIFICATE_REJECTED = "certificate rejected"
    NO_STARTTLS = "no starttls"  # security = "starttls", but the server does not offer it
    NO_LOGIN = "no login"  # credentials configured, but the server offers no way to log in


class SmtpUnavailable(NewsletterError, ConnectionError):
    """No usable connection; no message was tried. `setting` names the configuration key
    involved, where one is."""

    def __init__(
        self,
        message: str,
        *,
        failure: OpenFailure = OpenFailure.UNREACHABLE,
        code: int | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.code = code
        self.setting = setting


class SmtpConnectionLost(NewsletterError, ConnectionError):
    """The connection broke or timed out during a transaction: the outcome is unknown."""


class SmtpTimeout(SmtpConnectionLost, TimeoutError):
    """The server did not answer within `smtp.timeout` during a transaction."""


def dot_stuff(data: bytes) -> bytes:
    """The DATA payload for `data` (CRLF line endings): leading dots doubled, end marker added."""
    if data.startswith(b"."):
        data = b"." + data
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _reject(future: asyncio.Future[tuple[int, str]], error: Exception) -> None:
    future.set_exception(error)
    # Replies nobody waits for any more (a pipelined envelope given up after a timeout) must not
    # be logged as "exception was never retrieved"; a waiter still gets the error.
    future.exception()


class _Replies(asyncio.Protocol):
    """Reads the server's replies in order; each command written first asks for a future."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.closed = asyncio.Event()  # the connection is gone, its socket closed
        self._buffer = bytearray()
        self._waiting: deque[asyncio.Future[tuple[int, str]]] = deque()
        self._lost: Exception | None = None

    def expect(self, count: int) -> list[asyncio.Future[tuple[int, str]]]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        if self._lost is not None:
            for future in futures:
                _reject(future, self._lost)
        else:
            self._waiting.extend(futures)
        return futures

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_REPLY_BYTES:
            self._fail(SmtpConnectionLost("reply too long"))
            self.transport.abort()
            return
        while self._waiting:
            reply = self._take_reply()
            if reply is None:
                return
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def _take_reply(self) -> tuple[int, str] | None:
        lines: list[str] = []
        offset = 0
        while True:
            end = self._buffer.find(b"\n", offset)
            if end < 0:
                return None
            line = bytes(self._buffer[offset : end + 1]).rstrip(b"\r\n")
            offset = end + 1
            if len(line) < 3 or not line[:3].isdigit():
                self._fail(SmtpConnectionLost(f"malformed reply: {line[:80]!r}"))
                self.transport.abort()
                return None
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                del self._buffer[:offset]
                return int(line[:3]), "\n".join(lines).strip()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by the server"
        self._fail(SmtpConnectionLost(reason))
        self.closed.set()

    def eof_received(self) -> bool:
        self._fail(SmtpConnectionLost("connection closed by the server"))
        return False

    def _fail(self, error: Exception) -> None:
        self._lost = self._lost or error
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                _reject(future, self._lost)


class SmtpSession:
    """A persistent connection, reused for many messages until it breaks or has sent its share."""

    def __init__(self, config: SmtpConfig, *, key: str = "smtp") -> None:
        self.config = config
        self.key = key  # where this relay is configured, for error messages: smtp, smtp.relays[1]
        self.sent_on_connection = 0
        self.supports_smtputf8 = False
        self.pipelining = False
        self._replies: _Replies | None = None
        self._sender = config.from_address.encode()

    @property
    def connected(self) -> bool:
        return self._replies is not None and not self._replies.transport.is_closing()

    async def open(self) -> None:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            validate_certs=config.validate_certs,
            cert_bundle=str(config.ca_file) if config.ca_file else None,
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
            await _discard(client)
            raise _unavailable(exc, config, self.key) from None
        # An asyncio.Transport in spirit; uvloop's TCPTransport does not inherit from it.
        transport = cast(asyncio.Transport, client.transport)
        assert transport is not None
        self.supports_smtputf8 = client.supports_extension("smtputf8")
        self.pipelining = client.supports_extension("pipelining")
        # From here on this session speaks on the connection; aiosmtplib's protocol hears nothing.
        self._replies = _Replies(transport)
        transport.set_protocol(self._replies)
        self.sent_on_connection = 0

    @staticmethod
    async def _greet(client: aiosmtplib.SMTP) -> None:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()

    def due_for_reconnect(self) -> bool:
        return self.sent_on_connection >= self.config.messages_per_connection

    async def send(self, recipient: str, data: bytes, *, smtputf8: bool = False) -> SmtpReply:
        """One whole transaction: `begin`, then `finish` if the envelope was accepted."""
        refusal = await self.begin(recipient, smtputf8=smtputf8)
        return refusal if refusal is not None else await self.finish(data)

    async def begin(self, recipient: str, *, smtputf8: bool = False) -> SmtpReply | None:
        """The envelope: MAIL, RCPT and DATA (pipelined when offered). None once the server
        waits for the message (354); else the refusal, and the session is reset for the next.
        Nothing is delivered until `finish`, so a caller may do other work in between.
        A broken connection raises SmtpConnectionLost (and the session must be reopened)."""
        mail_from = b"MAIL FROM:<" + self._sender + b">" + (b" SMTPUTF8" if smtputf8 else b"") + b"\r\n"
        rcpt_to = b"RCPT TO:<" + _address(recipient) + b">\r\n"
        try:
            async with asyncio.timeout(self.config.timeout):
                refusal = await self._envelope(mail_from, rcpt_to)
        except (TimeoutError, SmtpConnectionLost, OSError) as exc:
            self.abort()
            raise _lost(exc) from None
        if refusal is not None:
            self.sent_on_connection += 1
            await self._after(refusal)
        return refusal

    async def finish(self, data: bytes) -> SmtpReply:
        """The message itself, after `begin` returned None; its reply is the outcome."""
        try:
            replies = self._live()
            [final] = replies.expect(1)
            replies.transport.write(dot_stuff(data))
            async with asyncio.timeout(self.config.timeout):
                code, text = await final
        except (TimeoutError, SmtpConnectionLost, OSError) as exc:
            self.abort()
            raise _lost(exc) from None
        self.sent_on_connection += 1
        reply = SmtpReply(code, text, "body")
        await self._after(reply)
        return reply

    async def _after(self, reply: SmtpReply) -> None:
        """What the connection needs after a reply (what the reply means for the message is
        delivery.decisions' to say)."""
        if reply.code == ReplyCode.CLOSING:  # RFC 5321 §3.8: the server has closed its side
            self.abort()
        elif reply.stage != "body" or reply.code >= 400:
            await self._reset()

    async def _envelope(self, mail_from: bytes, rcpt_to: bytes) -> SmtpReply | None:
        replies = self._live()
        if self.pipelining:
            mail, rcpt, start = replies.expect(3)
            replies.transport.write(mail_from + rcpt_to + b"DATA\r\n")
            steps = ((mail, "mail", ACCEPTED), (rcpt, "rcpt", RECIPIENT_OK), (start, "data", GO_AHEAD))
            for future, stage, wanted in steps:
                code, text = await future
                if code not in wanted:
                    # The later pipelined replies are still awaited so they are not left unread.
                    await asyncio.gather(*(f for f, _, _ in steps), return_exceptions=True)
                    return SmtpReply(code, text, stage)
            return None
        for command, stage, wanted in (
            (mail_from, "mail", ACCEPTED),
            (rcpt_to, "rcpt", RECIPIENT_OK),
            (b"DATA\r\n", "data", GO_AHEAD),
        ):
            [future] = replies.expect(1)
            replies.transport.write(command)
            code, text = await future
            if code not in wanted:
                return SmtpReply(code, text, stage)
        return None

    async def _reset(self) -> None:
        try:
            replies = self._live()
            [future] = replies.expect(1)
            replies.transport.write(b"RSET\r\n")
            async with asyncio.timeout(self.config.timeout):
                code, _ = await future
        except (TimeoutError, SmtpConnectionLost, OSError):
            self.abort()
            return
        if code != ReplyCode.OK:
            self.abort()

    def _live(self) -> _Replies:
        if self._replies is None or self._replies.transport.is_closing():
            raise SmtpConnectionLost("not connected")
        return self._replies

    async def close(self) -> None:
        """QUIT politely, then drop the connection and wait (briefly) for its socket to close;
        never raises."""
        replies = self._replies
        if self.connected and replies is not None:
            try:
                [future] = replies.expect(1)
                replies.transport.write(b"QUIT\r\n")
                async with asyncio.timeout(min(self.config.timeout, 5)):
                    await future
            except (TimeoutError, SmtpConnectionLost, OSError):
                pass
        self.abort()
        if replies is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await replies.closed.wait()

    def abort(self) -> None:
        """Drop the connection at once (a TLS one without its closing handshake: whatever
        was to be said has been said, or the connection is broken)."""
        replies, self._replies = self._replies, None
        if replies is not None:
            replies.transport.abort()


async def _discard(client: aiosmtplib.SMTP) -> None:
    """Drop a connection that could not be set up, its socket included (a graceful TLS close
    would leave the socket open until a handshake that may never come)."""
    transport = cast(asyncio.Transport | None, client.transport)
    if transport is not None:
        transport.abort()
    client.close()
    await asyncio.sleep(0)  # the socket closes on the loop's next turn


def _address(recipient: str) -> bytes:
    encoded = recipient.encode("utf-8")
    if any(byte < 0x21 or byte in (0x3C, 0x3E, 0x7F) for byte in encoded):
        raise ValueError("the address contains a control character, a space or angle brackets")
    return encoded


def _lost(exc: BaseException) -> SmtpConnectionLost:
    if isinstance(exc, SmtpConnectionLost):
        return exc
    if isinstance(exc, TimeoutError):
        return SmtpTimeout("timed out")
    return SmtpConnectionLost(_describe(exc))


def _unavailable(exc: BaseException, config: SmtpConfig, key: str) -> SmtpUnavailable:
    """What failed while connecting, as the facts delivery.decisions needs."""
    causes = _chain(exc)
    verify = next((c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        return SmtpUnavailable(
            f"{config.host}'s certificate was rejected ({verify.verify_message or verify}); use a "
            f"certificate the system trusts, name its CA in {key}.ca_file, or turn validate_certs off",
            failure=OpenFailure.CERTIFICATE_REJECTED,
            setting=f"{key}.validate_certs",
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SmtpUnavailable(
            f"{config.host} refused the login of {config.username!r}: {exc.code} {exc.message}",
            failure=OpenFailure.LOGIN_REFUSED,
            code=exc.code,
            setting=f"{key}.password",
        )
    text = str(exc)
    if "STARTTLS extension not supported" in text:
        return SmtpUnavailable(
            f"{config.host} does not offer STARTTLS",
            failure=OpenFailure.NO_STARTTLS,
            setting=f"{key}.security",
        )
    if "No suitable authentication method" in text or "AUTH extension not supported" in text:
        return SmtpUnavailable(
            f"{config.host} offers no way to log in: {text}",
            failure=OpenFailure.NO_LOGIN,
            setting=f"{key}.username",
        )
    code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
    return SmtpUnavailable(_describe(exc), code=code)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
