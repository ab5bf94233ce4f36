"""The wire: replies read in order from a connection a session has taken over, and the body made
ready for DATA."""

from __future__ import annotations

import asyncio
from collections import deque

from newsletter.delivery.smtp.errors import SmtpConnectionLost

# Replies longer than this are a protocol violation (RFC 5321 allows 512 octets a line).
MAX_REPLY_BYTES = 64 * 1024


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
