"""The wire: replies read in order from a connection a session has taken over, each awaited no
longer than its timeout, and the body made ready for DATA."""

from __future__ import annotations

import asyncio
from collections import deque

from newsletter.delivery.smtp.errors import SmtpConnectionLost, SmtpTimeout

# Replies longer than this are a protocol violation (RFC 5321 allows 512 octets a line).
MAX_REPLY_BYTES = 64 * 1024
# One-line replies seen before, as parsed: a server says the same few things again and again
# ("250 2.1.0 Ok"); those that are new every time (a queue id) stop being kept at this many.
KNOWN_REPLIES = 1024
_known: dict[bytes, tuple[int, str]] = {}


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


class Replies(asyncio.Protocol):
    """Reads the server's replies in order; each command written first asks for a future, which
    fails with SmtpTimeout (and the connection is dropped) if its reply takes longer than the
    timeout given. One timer per connection watches the oldest reply awaited, instead of a
    timer set and cancelled for every command."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.closed = asyncio.Event()  # the connection is gone, its socket closed
        self._buffer = bytearray()
        self._waiting: deque[tuple[asyncio.Future[tuple[int, str]], float]] = deque()
        self._lost: Exception | None = None
        self._watch: asyncio.TimerHandle | None = None

    def expect(self, count: int, timeout: float) -> list[asyncio.Future[tuple[int, str]]]:
        """Futures for the replies to the next `count` commands, each due within `timeout`."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        if self._lost is not None:
            for future in futures:
                _reject(future, self._lost)
            return futures
        deadline = loop.time() + timeout
        self._waiting.extend((future, deadline) for future in futures)
        if self._watch is None:
            self._watch = loop.call_at(deadline, self._check_deadline)
        return futures

    def _check_deadline(self) -> None:
        """The oldest reply awaited is overdue: the connection is dropped. Else the timer moves
        on to its deadline (replies arrive in order, so no later one is due sooner)."""
        self._watch = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        deadline = self._waiting[0][1]
        if deadline > loop.time():
            self._watch = loop.call_at(deadline, self._check_deadline)
            return
        self._fail(SmtpTimeout("timed out"))
        self.transport.abort()

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
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def _take_reply(self) -> tuple[int, str] | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        known = _known.get(bytes(self._buffer[: end + 1]))
        if known is not None:
            del self._buffer[: end + 1]
            return known
        lines: list[str] = []
        offset = 0
        while True:
            end = self._buffer.find(b"\n", offset)
            if end < 0:
                return None
            raw = bytes(self._buffer[offset : end + 1])
            line = raw.rstrip(b"\r\n")
            offset = end + 1
            if len(line) < 3 or not line[:3].isdigit():
                self._fail(SmtpConnectionLost(f"malformed reply: {line[:80]!r}"))
                self.transport.abort()
                return None
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                del self._buffer[:offset]
                reply = int(line[:3]), "\n".join(lines).strip()
                if offset == len(raw) and len(_known) < KNOWN_REPLIES:
                    _known[raw] = reply
                return reply

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by the server"
        self._fail(SmtpConnectionLost(reason))
        self.closed.set()

    def eof_received(self) -> bool:
        self._fail(SmtpConnectionLost("connection closed by the server"))
        return False

    def _fail(self, error: Exception) -> None:
        self._lost = self._lost or error
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                _reject(future, self._lost)
