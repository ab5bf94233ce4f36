"""Real SMTP servers for tests: aiosmtpd on port 0 in a child process, recording or injecting faults."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import multiprocessing
import os
import queue
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

_TOKENS = itertools.count(1)
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


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
        """The Message-ID header, read from the raw bytes (parsing 5,000 messages is slow)."""
        found = _MESSAGE_ID.search(self.data)
        return found.group(1).decode() if found else ""


class Mailbox:
    """Accepts everything and keeps it; optionally advertises PIPELINING.

    The server runs in a child process (see SmtpServer); what it sees comes back to the test
    process as events, so `messages()`, `count()`, `rcpt_attempts`, `faults` and `connections`
    read the same in both."""

    def __init__(self, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self._received: list[Received] = []
        self._rcpt_attempts: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._connections = 0
        self._server_of: dict[int, SMTP] = {}
        # In the child: where events go. In the test process: where they come from, and where
        # flush requests go.
        self._outbox: Any = None
        self._inbox: Any = None
        self._control: Any = None

    # -- the server side (child process) ------------------------------------------------------

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
        self._server_of[id(session)] = server
        self._rcpt_attempts[address] += 1
        self._publish("rcpt", address)
        reply = await self.rcpt_reply(address, self._rcpt_attempts[address], session)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._server_of[id(session)] = server
        reply = await self.data_reply(envelope, session)
        if reply is not None:
            return reply
        self._keep(envelope)
        return "250 2.0.0 Message accepted"

    def _keep(self, envelope: Envelope) -> None:
        content = envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        received = Received(str(envelope.mail_from), list(envelope.rcpt_tos), data)
        self._received.append(received)
        self._publish("received", received)

    def _note_connection(self) -> None:
        self._connections += 1
        self._publish("connection", None)

    def _note(self, fault: str) -> None:
        self._faults[fault] += 1
        self._publish("fault", fault)

    def _publish(self, kind: str, payload: object) -> None:
        if self._outbox is not None:
            self._outbox.put((kind, payload))

    async def rcpt_reply(self, address: str, attempt: int, session: Session) -> str | None:
        """Override to refuse a recipient: return e.g. "550 5.1.1 no such user"."""
        return None

    async def data_reply(self, envelope: Envelope, session: Session) -> str | None:
        """Override to refuse or disturb a message after DATA."""
        return None

    # -- the test side ------------------------------------------------------------------------

    def _sync(self) -> None:
        """Take in what the server has seen. While it runs, a round trip through the child makes
        sure everything it did before now (every reply a client has already read) is here."""
        if self._inbox is None:
            return
        token = None
        if self._control is not None:
            token = next(_TOKENS)
            self._control.put(token)
        while True:
            try:
                kind, payload = self._inbox.get(timeout=10) if token is not None else self._inbox.get_nowait()
            except queue.Empty:
                if token is not None:
                    raise RuntimeError("the test SMTP server stopped answering") from None
                return
            if kind == "flushed" and payload == token:
                return
            self._apply(kind, payload)

    def _apply(self, kind: str, payload: Any) -> None:
        if kind == "received":
            self._received.append(payload)
        elif kind == "rcpt":
            self._rcpt_attempts[payload] += 1
        elif kind == "fault":
            self._faults[payload] += 1
        elif kind == "connection":
            self._connections += 1

    @property
    def rcpt_attempts(self) -> Counter[str]:
        self._sync()
        return self._rcpt_attempts

    @property
    def faults(self) -> Counter[str]:
        self._sync()
        return self._faults

    @property
    def connections(self) -> int:
        self._sync()
        return self._connections

    def messages(self) -> list[Received]:
        self._sync()
        return list(self._received)

    def count(self) -> int:
        self._sync()
        return len(self._received)

    def recipients(self) -> list[str]:
        return [r for item in self.messages() for r in item.rcpt_tos]


class FaultyMailbox(Mailbox):
    """A mailbox whose replies and faults are decided per recipient (and attempt) by functions.

    - rcpt(address, attempt) -> reply or None: refuse a recipient ("550 ...", "451 ...").
    - data(rcpts) -> reply or None: refuse the message after its body.
    - drop_before_data(address, attempt): close the connection at RCPT, without a reply.
    - drop_at_data(rcpts): close the connection right after the 354, while the body is coming.
    - drop_during_data(rcpts): close it once the body is in, before replying; nothing kept.
    - accept_then_drop(rcpts): keep the message, then close without replying (the client
      cannot know it arrived: a retry duplicates it).
    - hang(address, attempt) -> seconds: wait that long before answering RCPT.
    - mail(sender) -> reply or None: answer MAIL FROM with it (None: accept).
    """

    def __init__(
        self,
        rcpt: Callable[[str, int], str | None] | None = None,
        data: Callable[[list[str]], str | None] | None = None,
        *,
        drop_before_data: Callable[[str, int], bool] | None = None,
        drop_at_data: Callable[[list[str]], bool] | None = None,
        drop_during_data: Callable[[list[str]], bool] | None = None,
        accept_then_drop: Callable[[list[str]], bool] | None = None,
        hang: Callable[[str, int], float] | None = None,
        mail: Callable[[str], str | None] | None = None,
        delay: float = 0.0,
        pipelining: bool = True,
    ) -> None:
        super().__init__(pipelining=pipelining)
        self._mail = mail
        self._rcpt = rcpt
        self._data = data
        self._drop_before_data = drop_before_data
        self._drop_at_data = drop_at_data
        self._drop_during_data = drop_during_data
        self._accept_then_drop = accept_then_drop
        self._hang = hang
        self.delay = delay

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._mail is not None and (reply := self._mail(address)) is not None:
            self._note("mail_refused")
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def rcpt_reply(self, address: str, attempt: int, session: Session) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._hang is not None and (seconds := self._hang(address, attempt)):
            self._note("hang")
            await asyncio.sleep(seconds)
        if self._drop_before_data is not None and self._drop_before_data(address, attempt):
            self._note("drop_before_data")
            self._abort(session)
            return "421 dropped"
        return self._rcpt(address, attempt) if self._rcpt else None

    def drops_at_data(self, rcpts: list[str]) -> bool:
        if self._drop_at_data is not None and self._drop_at_data(rcpts):
            self._note("drop_at_data")
            return True
        return False

    async def data_reply(self, envelope: Envelope, session: Session) -> str | None:
        rcpts = list(envelope.rcpt_tos)
        if self._drop_during_data is not None and self._drop_during_data(rcpts):
            self._note("drop_during_data")
            self._abort(session)
            return "421 dropped"
        if self._accept_then_drop is not None and self._accept_then_drop(rcpts):
            self._note("accept_then_drop")
            self._keep(envelope)
            self._abort(session)
            return "421 dropped"
        return self._data(rcpts) if self._data else None

    def _abort(self, session: Session) -> None:
        server = self._server_of.get(id(session))
        if server is not None and isinstance(server.transport, asyncio.Transport):
            server.transport.abort()


class _FaultySMTP(SMTP):
    """aiosmtpd's server with one more fault: dropping the connection in the middle of DATA."""

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        envelope = self.envelope
        faulty = isinstance(handler, FaultyMailbox) and envelope is not None and envelope.rcpt_tos
        if faulty and handler.drops_at_data(list(envelope.rcpt_tos)):  # type: ignore[union-attr]
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.abort()
            return
        await super().smtp_DATA(arg)


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 (an ephemeral port unless given), in a child process.

    A process of its own, not a thread: sharing the test process's GIL, aiosmtpd managed under
    200 messages a second and made every SMTP exchange wait on the client's threads. The child
    is forked, so handlers with closures work; what it sees comes back through the handler."""

    handler: Mailbox = field(default_factory=Mailbox)
    tls_context: ssl.SSLContext | None = None
    require_starttls: bool = False
    implicit_tls: bool = False
    auth: dict[str, str] | None = None
    port: int = 0
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stop: Any = None

    def _factory(self) -> SMTP:
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": True, "decode_data": False}
        if self.tls_context is not None and not self.implicit_tls:
            kwargs.update(tls_context=self.tls_context, require_starttls=self.require_starttls)
        if self.auth is not None:
            users = self.auth

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                login, password = (
                    value.decode() if isinstance(value, bytes) else value
                    for value in (auth_data.login, auth_data.password)
                )
                return AuthResult(success=users.get(login) == password, handled=False)

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        self.handler._note_connection()
        return _FaultySMTP(self.handler, **kwargs)

    def start(self) -> SmtpServer:
        context = multiprocessing.get_context("fork")
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on sockets that say they are TCP, and
        # without it the server's second small reply waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1000)
        self.port = sock.getsockname()[1]
        events = context.Queue()
        control = context.Queue()
        ready = context.Event()
        self._stop = context.Event()
        self.handler._inbox = events
        self._process = context.Process(
            target=self._serve,
            args=(sock, events, control, ready, self._stop),
            name=f"smtp-{self.port}",
            daemon=True,
        )
        self._process.start()
        sock.close()
        if not ready.wait(10):
            raise RuntimeError("the test SMTP server did not start")
        self.handler._control = control
        return self

    def _serve(self, sock: socket.socket, events: Any, control: Any, ready: Any, stop: Any) -> None:
        self.handler._inbox = None
        self.handler._control = None
        self.handler._outbox = events

        def answer_flushes() -> None:
            while True:
                token = control.get()
                if token is None:
                    return
                events.put(("flushed", token))

        threading.Thread(target=answer_flushes, daemon=True).start()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ssl_context = self.tls_context if self.implicit_tls else None
        server = loop.run_until_complete(loop.create_server(self._factory, sock=sock, ssl=ssl_context))
        ready.set()
        loop.run_until_complete(asyncio.to_thread(stop.wait))
        server.close()
        events.close()
        events.join_thread()
        os._exit(0)

    def stop(self) -> None:
        if self._process is None:
            return
        self.handler._control = None
        self._stop.set()
        # Keep reading while the child exits: it flushes its last events into the pipe first,
        # and a full pipe nobody reads would keep it from ever finishing.
        deadline = time.monotonic() + 30
        while self._process.is_alive() and time.monotonic() < deadline:
            self.handler._sync()
            self._process.join(0.02)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        else:
            self.handler._sync()
        self.handler._inbox = None
        self._process = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
