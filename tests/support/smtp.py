"""Real SMTP servers for tests: aiosmtpd on port 0 in a thread, recording or injecting faults."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message()["Message-ID"])


class Mailbox:
    """Accepts everything and keeps it; optionally advertises PIPELINING."""

    def __init__(self, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.rcpt_attempts: dict[str, int] = {}
        self.connections = 0
        self._server_of: dict[int, SMTP] = {}

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            attempt = self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
        reply = await self.rcpt_reply(address, attempt, session)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._server_of[id(session)] = server
        reply = await self.data_reply(envelope, session)
        if reply is not None:
            return reply
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.content or b""))
            )
        return "250 2.0.0 Message accepted"

    async def rcpt_reply(self, address: str, attempt: int, session: Session) -> str | None:
        """Override to refuse a recipient: return e.g. "550 5.1.1 no such user"."""
        return None

    async def data_reply(self, envelope: Envelope, session: Session) -> str | None:
        """Override to refuse or disturb a message after DATA."""
        return None

    # Helpers for assertions.
    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def recipients(self) -> list[str]:
        return [r for item in self.messages() for r in item.rcpt_tos]


class FaultyMailbox(Mailbox):
    """A mailbox whose replies are decided per recipient and attempt by a function."""

    def __init__(
        self,
        rcpt: Callable[[str, int], str | None] | None = None,
        data: Callable[[list[str]], str | None] | None = None,
        *,
        drop_during_data: Callable[[list[str]], bool] | None = None,
        delay: float = 0.0,
        pipelining: bool = True,
    ) -> None:
        super().__init__(pipelining=pipelining)
        self._rcpt = rcpt
        self._data = data
        self._drop = drop_during_data
        self.delay = delay

    async def rcpt_reply(self, address: str, attempt: int, session: Session) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._rcpt(address, attempt) if self._rcpt else None

    async def data_reply(self, envelope: Envelope, session: Session) -> str | None:
        if self._drop is not None and self._drop(list(envelope.rcpt_tos)):
            assert self._server_of[id(session)].transport is not None
            self._server_of[id(session)].transport.abort()  # type: ignore[attr-defined]
            return "421 dropped"
        return self._data(list(envelope.rcpt_tos)) if self._data else None


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 and an ephemeral port, run on its own thread."""

    handler: Mailbox = field(default_factory=Mailbox)
    tls_context: ssl.SSLContext | None = None
    require_starttls: bool = False
    implicit_tls: bool = False
    auth: dict[str, str] | None = None
    port: int = 0
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sock: socket.socket | None = None

    def _factory(self) -> SMTP:
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": True, "decode_data": False}
        if self.tls_context is not None and not self.implicit_tls:
            kwargs.update(tls_context=self.tls_context, require_starttls=self.require_starttls)
        if self.auth is not None:
            users = self.auth

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> Any:
                from aiosmtpd.smtp import AuthResult

                login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
                password = (
                    auth_data.password.decode()
                    if isinstance(auth_data.password, bytes)
                    else auth_data.password
                )
                return AuthResult(success=users.get(login) == password, handled=False)

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        self.handler.connections += 1
        return SMTP(self.handler, **kwargs)

    def start(self) -> SmtpServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            ssl_context = self.tls_context if self.implicit_tls else None
            self._server = self._loop.run_until_complete(
                self._loop.create_server(self._factory, sock=sock, ssl=ssl_context)
            )
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"smtp-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop.close()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
