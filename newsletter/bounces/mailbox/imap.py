"""The bounce mailbox over IMAP (aioimaplib): TLS, STARTTLS or plain; IDLE when offered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import aioimaplib

from newsletter.bounces.mailbox.access import TIMEOUT_SECONDS, Listed, connect_failure, describe, tls_context
from newsletter.bounces.mailbox.errors import MailboxUnavailable
from newsletter.config.bounces import MailboxConfig

T = TypeVar("T")
# A server may drop a connection idle for 30 minutes (RFC 2177): IDLE is renewed before then.
IDLE_LIMIT_SECONDS = 29 * 60.0
LOGOUT_SECONDS = 5.0
_FETCHED = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")

# aioimaplib logs every line on the wire at DEBUG (the messages, and a password it fails to mask
# when quoting changed it) and each untagged reply it ignores at INFO: none of it is ours to log.
logging.getLogger("aioimaplib").setLevel(logging.WARNING)


class ImapMailbox:
    """One selected folder on one connection; `open` connects, logs in and selects it."""

    def __init__(self, client: aioimaplib.IMAP4, config: MailboxConfig, lost: asyncio.Event) -> None:
        self._client = client
        self._config = config
        self._lost = lost  # the server hung up: every command from now on fails at once
        self._news = False  # the server said EXISTS since the last listing
        self._validity = ""

    @classmethod
    async def open(cls, config: MailboxConfig) -> ImapMailbox:
        lost = asyncio.Event()
        tls = tls_context(config) if config.security != "none" else None
        client = aioimaplib.IMAP4(
            host=config.host,
            port=config.effective_port,
            timeout=TIMEOUT_SECONDS,
            conn_lost_cb=lambda _exc: lost.set(),
            ssl_context=tls if config.security == "tls" else None,
        )
        mailbox = cls(client, config, lost)
        try:
            await mailbox._start(tls)
        except BaseException:
            mailbox.abort()
            raise
        return mailbox

    @property
    def keeps_watch(self) -> bool:
        return self._config.idle and self._client.has_capability("IDLE")

    async def listing(self) -> list[Listed]:
        self._news = False
        response = await self._ok(self._client.uid("fetch", "1:*", "(RFC822.SIZE)"), "UID FETCH")
        found: list[Listed] = []
        for line in response.lines:
            if isinstance(line, bytes) and _FETCHED.match(line):
                uid, size = _UID.search(line), _SIZE.search(line)
                if uid and size:
                    key = uid.group(1).decode()
                    found.append(Listed(key, f"{self._validity}:{key}", int(size.group(1))))
        return sorted(found, key=lambda listed: int(listed.key))

    async def fetch(self, key: str) -> bytes | None:
        response = await self._ok(self._client.uid("fetch", key, "(BODY.PEEK[])"), "UID FETCH")
        return next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)

    async def remove(self, key: str) -> None:
        target = self._config.processed_folder
        if target and self._client.has_capability("MOVE"):
            await self._ok(self._client.uid("move", key, aioimaplib.quoted(target)), "UID MOVE")
            return
        if target:
            await self._ok(self._client.uid("copy", key, aioimaplib.quoted(target)), "UID COPY")
        await self._ok(self._client.uid("store", key, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
        if self._client.has_capability("UIDPLUS"):
            await self._ok(self._client.uid("expunge", key), "UID EXPUNGE")
        else:
            await self._ok(self._client.expunge(), "EXPUNGE")

    async def wait_for_mail(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._news and (left := deadline - loop.time()) > 0:
            self._news = await self._idle(min(left, IDLE_LIMIT_SECONDS))

    async def close(self) -> None:
        try:
            if not self._lost.is_set():
                # Nothing is pending: every removal was confirmed as it was made, so LOGOUT is a
                # courtesy, not waited for long.
                with contextlib.suppress(TimeoutError, OSError, aioimaplib.AioImapException):
                    await asyncio.wait_for(self._client.logout(), LOGOUT_SECONDS)
        finally:  # even when the caller is cancelled meanwhile: no socket left to the GC
            self.abort()

    def abort(self) -> None:
        transport = self._client.protocol.transport
        if transport is not None:
            transport.abort()

    async def _start(self, tls: ssl.SSLContext | None) -> None:
        config = self._config
        try:
            await self._client.wait_hello_from_server()
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise connect_failure(exc, config, "IMAP") from None
        if config.security == "starttls" and tls is not None:
            await self._start_tls(tls)
        if self._client.has_capability("LOGINDISABLED"):
            raise MailboxUnavailable(f"{config.host} refuses logins without TLS", setting="security")
        password = config.password.get_secret_value()
        login = await self._run(self._client.login(config.username, password), "LOGIN")
        if login.result != "OK":
            raise MailboxUnavailable(
                f"{config.host} refused the login of {config.username!r}: {_text(login)}", setting="password"
            )
        selected = await self._run(self._client.select(aioimaplib.quoted(config.folder)), "SELECT")
        if selected.result != "OK":
            raise MailboxUnavailable(f"cannot open {config.folder!r}: {_text(selected)}", setting="folder")
        self._validity = next((m.group(1).decode() for m in map(_uidvalidity, selected.lines) if m), "")
        if config.processed_folder:
            await self._ensure_folder(config.processed_folder)

    async def _start_tls(self, tls: ssl.SSLContext) -> None:
        protocol = self._client.protocol
        if not self._client.has_capability("STARTTLS"):
            raise MailboxUnavailable(f"{self._config.host} does not offer STARTTLS", setting="security")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        await self._ok(protocol.execute(command), "STARTTLS")
        loop = asyncio.get_running_loop()
        upgrade = loop.start_tls(protocol.transport, protocol, tls, server_hostname=self._config.host)
        try:
            protocol.transport = await asyncio.wait_for(upgrade, TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise connect_failure(exc, self._config, "IMAP") from None
        await self._run(protocol.capability(), "CAPABILITY")  # what it offers may change under TLS

    async def _ensure_folder(self, name: str) -> None:
        status = await self._run(self._client.status(aioimaplib.quoted(name), "(MESSAGES)"), "STATUS")
        if status.result == "OK":
            return
        created = await self._run(self._client.create(aioimaplib.quoted(name)), "CREATE")
        if created.result != "OK":
            raise MailboxUnavailable(f"cannot create {name!r}: {_text(created)}", setting="processed_folder")

    async def _idle(self, seconds: float) -> bool:
        """One IDLE of at most `seconds`: whether the server announced new mail."""
        idle = await self._run(self._client.idle_start(timeout=seconds), "IDLE")
        try:
            while True:
                push = await self._run(self._push(seconds + TIMEOUT_SECONDS), "IDLE")
                if push is None or push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    return False
                if _announces_mail(push):
                    return True
        finally:
            if not self._lost.is_set() and self._client.has_pending_idle():
                self._client.idle_done()
                await self._run(idle, "IDLE")

    async def _push(self, seconds: float) -> list[Any] | None:
        """What the server said while idling (a keep-alive, EXISTS, EXPUNGE...); None: nothing."""
        try:
            return list(await self._client.wait_server_push(seconds))
        except TimeoutError:
            return None

    async def _ok(self, call: Awaitable[Any], what: str) -> Any:
        response = await self._run(call, what)
        if response.result != "OK":
            raise MailboxUnavailable(f"{what} refused: {_text(response)}")
        return response

    async def _run(self, call: Awaitable[T], what: str) -> T:
        """`call`, or MailboxUnavailable when it fails or the connection goes."""
        task = asyncio.ensure_future(call)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            raise MailboxUnavailable(f"{what}: {self._config.host} closed the connection")
        try:
            result = task.result()
        except (OSError, aioimaplib.AioImapException) as exc:
            raise MailboxUnavailable(f"{what} failed: {describe(exc)}") from None
        self._news = self._news or _announces_mail(getattr(result, "lines", None) or ())
        return result


def _announces_mail(lines: Iterable[object]) -> bool:
    return any(isinstance(line, bytes) and line.endswith(b" EXISTS") for line in lines)


def _uidvalidity(line: object) -> re.Match[bytes] | None:
    return _UIDVALIDITY.search(line) if isinstance(line, bytes) else None


def _text(response: Any) -> str:
    last = response.lines[-1] if response.lines else b""
    return bytes(last).decode("utf-8", "replace")[:200] or response.result
