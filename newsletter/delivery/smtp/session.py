"""One SMTP connection. aiosmtplib connects, negotiates TLS and authenticates; then the session
takes the connection over to run message transactions itself, pipelining MAIL, RCPT and DATA
(RFC 2920) when the server offers it: two round trips per message instead of four, and bytes
that are already CRLF-terminated go out with no per-message regex pass."""

from __future__ import annotations

import asyncio
import contextlib
import re

from newsletter.config import SmtpConfig
from newsletter.delivery.smtp.errors import SmtpConnectionLost, SmtpTimeout
from newsletter.delivery.smtp.opening import open_connection
from newsletter.delivery.smtp.protocol import Replies, dot_stuff
from newsletter.delivery.smtp.replies import ACCEPTED, GO_AHEAD, RECIPIENT_OK, ReplyCode, SmtpReply


class SmtpSession:
    """A persistent connection, reused for many messages until it breaks or has sent its share."""

    def __init__(self, config: SmtpConfig, *, key: str = "smtp") -> None:
        self.config = config
        self.key = key  # where this relay is configured, for error messages: smtp, smtp.relays[1]
        self.sent_on_connection = 0
        self.supports_smtputf8 = False
        self.pipelining = False
        self.offers: dict[str, str] = {}  # the ESMTP extensions the server offered, with parameters
        self.tls: str | None = None  # the TLS version and cipher, once connected over TLS
        self._replies: Replies | None = None
        self._sender = config.from_address.encode()

    @property
    def connected(self) -> bool:
        return self._replies is not None and not self._replies.transport.is_closing()

    async def open(self) -> None:
        """Connect (TLS and login as configured); SmtpUnavailable when that fails."""
        opened = await open_connection(self.config, self.key)
        self.offers, self.tls = opened.offers, opened.tls
        self.supports_smtputf8 = "smtputf8" in opened.offers
        self.pipelining = "pipelining" in opened.offers
        # From here on this session speaks on the connection; aiosmtplib's protocol hears nothing.
        self._replies = Replies(opened.transport)
        opened.transport.set_protocol(self._replies)
        self.sent_on_connection = 0

    def due_for_reconnect(self) -> bool:
        return self.sent_on_connection >= self.config.messages_per_connection

    async def send(
        self,
        recipient: str,
        data: bytes,
        *,
        smtputf8: bool = False,
        dot_stuffed: bool = False,
        sender: str | None = None,
    ) -> SmtpReply:
        """One whole transaction: `begin`, then `finish` if the envelope was accepted."""
        refusal = await self.begin(recipient, smtputf8=smtputf8, sender=sender)
        return refusal if refusal is not None else await self.finish(data, dot_stuffed=dot_stuffed)

    async def begin(
        self, recipient: str, *, smtputf8: bool = False, sender: str | None = None
    ) -> SmtpReply | None:
        """The envelope: MAIL, RCPT and DATA (pipelined when offered). None once the server
        waits for the message (354); else the refusal, and the session is reset for the next.
        Nothing is delivered until `finish`, so a caller may do other work in between.
        A broken connection raises SmtpConnectionLost (and the session must be reopened)."""
        # `sender`: the message's own envelope sender (a VERP address); else smtp.from_address.
        envelope = _address(sender) if sender is not None else self._sender
        mail_from = b"MAIL FROM:<" + envelope + b">" + (b" SMTPUTF8" if smtputf8 else b"") + b"\r\n"
        rcpt_to = b"RCPT TO:<" + _address(recipient) + b">\r\n"
        try:
            refusal = await self._envelope(mail_from, rcpt_to)
        except (TimeoutError, SmtpConnectionLost, OSError) as exc:
            self.abort()
            raise _lost(exc) from None
        if refusal is not None:
            self.sent_on_connection += 1
            await self._after(refusal)
        return refusal

    async def finish(self, data: bytes, *, dot_stuffed: bool = False) -> SmtpReply:
        """The message itself, after `begin` returned None; its reply is the outcome. With
        `dot_stuffed`, `data` is DATA's payload already (leading dots doubled, ".\r\n" at the
        end: a template can stuff its fixed parts once), and goes as it is."""
        try:
            replies = self._live()
            [final] = replies.expect(1, self.config.timeout)
            replies.transport.write(data if dot_stuffed else dot_stuff(data))
            code, text = await final
        except (TimeoutError, SmtpConnectionLost, OSError) as exc:
            self.abort()
            raise _lost(exc) from None
        self.sent_on_connection += 1
        reply = SmtpReply(code, text, "body")
        if code >= 400:
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
            mail, rcpt, start = replies.expect(3, self.config.timeout)
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
            [future] = replies.expect(1, self.config.timeout)
            replies.transport.write(command)
            code, text = await future
            if code not in wanted:
                return SmtpReply(code, text, stage)
        return None

    async def _reset(self) -> None:
        try:
            replies = self._live()
            [future] = replies.expect(1, self.config.timeout)
            replies.transport.write(b"RSET\r\n")
            code, _ = await future
        except (TimeoutError, SmtpConnectionLost, OSError):
            self.abort()
            return
        if code != ReplyCode.OK:
            self.abort()

    def _live(self) -> Replies:
        if self._replies is None or self._replies.transport.is_closing():
            raise SmtpConnectionLost("not connected")
        return self._replies

    async def close(self) -> None:
        """QUIT politely, then drop the connection and wait (briefly) for its socket to close;
        never raises."""
        replies = self._replies
        if self.connected and replies is not None:
            try:
                [future] = replies.expect(1, min(self.config.timeout, 5))
                replies.transport.write(b"QUIT\r\n")
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


_UNSENDABLE = re.compile(rb"[\x00-\x20<>\x7f]")


def _address(recipient: str) -> bytes:
    encoded = recipient.encode("utf-8")
    if _UNSENDABLE.search(encoded):
        raise ValueError("the address contains a control character, a space or angle brackets")
    return encoded


def _lost(exc: BaseException) -> SmtpConnectionLost:
    if isinstance(exc, SmtpConnectionLost):
        return exc
    if isinstance(exc, TimeoutError):
        return SmtpTimeout("timed out")
    return SmtpConnectionLost(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
