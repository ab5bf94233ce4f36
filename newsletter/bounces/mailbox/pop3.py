"""The bounce mailbox over POP3: the standard library's poplib, each call on a thread.

POP3 deletes at QUIT: a message marked with DELE stays in the mailbox when the connection
drops first, so a pass that breaks off loses nothing (its messages come back as duplicates).
"""

from __future__ import annotations

import asyncio
import poplib
import ssl
from collections.abc import Callable
from typing import TypeVar

from newsletter.bounces.mailbox.access import TIMEOUT_SECONDS, Listed, connect_failure, describe, tls_context
from newsletter.bounces.mailbox.errors import MailboxUnavailable
from newsletter.config.bounces import MailboxConfig
from newsletter.logs import get_logger

T = TypeVar("T")
log = get_logger(__name__)


class _LongLines(poplib.POP3):
    """poplib refuses a line over 2,048 bytes; a returned message may have longer ones (mail
    that breaks RFC 5322's 998), so lines are read up to the size limit of a whole message."""

    longest_line = 2048

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(self.longest_line + 1)
        if len(line) > self.longest_line:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        if line.endswith(b"\r\n"):
            return line[:-2], len(line)
        if line.startswith(b"\r"):
            return line[1:-1], len(line)
        return line[:-1], len(line)


class _Plain(_LongLines):
    pass


class _Tls(_LongLines, poplib.POP3_SSL):
    pass


class Pop3Mailbox:
    """One POP3 session: a pass lists, fetches, marks; `close` (QUIT) makes the deletions final."""

    keeps_watch = False  # deletions are final at QUIT, and new mail shows only in a new session

    def __init__(self, client: _LongLines, config: MailboxConfig) -> None:
        self._client = client
        self._config = config

    @classmethod
    async def open(cls, config: MailboxConfig) -> Pop3Mailbox:
        return cls(await asyncio.to_thread(_connect, config), config)

    async def listing(self) -> list[Listed]:
        sizes = await self._call(self._client.list, "LIST")
        names = await self._call(self._client.uidl, "UIDL")
        idents = dict(line.decode("ascii", "replace").split(" ", 1) for line in names[1] if b" " in line)
        found = []
        for line in sizes[1]:
            number, _, size = line.decode("ascii", "replace").partition(" ")
            if number.isdigit() and size.strip().isdigit():
                found.append(Listed(number, idents.get(number, number), int(size)))
        return found

    async def fetch(self, key: str) -> bytes | None:
        lines = (await self._call(lambda: self._client.retr(int(key)), "RETR"))[1]
        return b"\r\n".join(lines) + b"\r\n"

    async def remove(self, key: str) -> None:
        await self._call(lambda: self._client.dele(int(key)), "DELE")

    async def wait_for_mail(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        try:
            await self._call(self._client.quit, "QUIT")
        except MailboxUnavailable as exc:
            # What was recorded stays until the next pass, which finds it recorded already.
            log.warning("bounce.mailbox.quit_failed", error=str(exc))
            self.abort()

    def abort(self) -> None:
        self._client.close()

    async def _call(self, call: Callable[[], T], what: str) -> T:
        try:
            return await asyncio.to_thread(call)
        except (OSError, poplib.error_proto) as exc:
            raise MailboxUnavailable(f"{what} failed: {_reply(exc)}") from None


def _connect(config: MailboxConfig) -> _LongLines:
    """Connect, shake hands and log in (blocking: run it on a thread)."""
    host, port = config.host, config.effective_port
    try:
        tls = tls_context(config) if config.security != "none" else None
        client: _LongLines
        if config.security == "tls" and tls is not None:
            client = _Tls(host, port, timeout=TIMEOUT_SECONDS, context=tls)
        else:
            client = _Plain(host, port, timeout=TIMEOUT_SECONDS)
    except (OSError, poplib.error_proto) as exc:
        raise connect_failure(exc, config, "POP3") from None
    client.longest_line = max(config.max_message_bytes, 2048)
    try:
        if config.security == "starttls":
            _start_tls(client, config, tls)
        _log_in(client, config)
    except BaseException:
        client.close()
        raise
    return client


def _start_tls(client: _LongLines, config: MailboxConfig, tls: ssl.SSLContext | None) -> None:
    try:
        client.stls(tls)
    except poplib.error_proto as exc:
        raise MailboxUnavailable(f"{config.host} refused STLS: {_reply(exc)}", setting="security") from None
    except OSError as exc:
        raise connect_failure(exc, config, "POP3") from None


def _log_in(client: _LongLines, config: MailboxConfig) -> None:
    try:
        client.user(config.username)
        client.pass_(config.password.get_secret_value())
    except poplib.error_proto as exc:
        reply = _reply(exc)
        if "plaintext" in reply.lower():
            message = f"{config.host} refuses logins without TLS: {reply}"
            raise MailboxUnavailable(message, setting="security") from None
        raise MailboxUnavailable(
            f"{config.host} refused the login of {config.username!r}: {reply}", setting="password"
        ) from None
    except OSError as exc:
        raise MailboxUnavailable(f"login failed: {describe(exc)}") from None


def _reply(exc: BaseException) -> str:
    first = exc.args[0] if exc.args else exc
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    return text[:200]
