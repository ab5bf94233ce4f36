"""The HTTP listener: uvicorn, with deadlines for reading a request and a cap on connections.

uvicorn holds a connection that never finishes its headers for ever, and takes connections until
the process runs out of file descriptors. Then asyncio's accept loop (Python 3.11) logs its
error for every pending connection at every tick: on the common 1,024-descriptor limit, about
1,100 slow sockets from one client took `/healthz` down and wrote 35,000 log lines a second.
Here a request must deliver its headers within `server.header_timeout_seconds` and its body
within `server.body_timeout_seconds`, at most `server.max_connections` are open at once (more
are answered 503 and closed), and that accept error is logged at most once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from newsletter.config import ServerConfig, Settings
from newsletter.logs import get_logger
from newsletter.service import Part

log = get_logger(__name__)

# Descriptors kept for everything but client connections: database, SMTP pool, files, logs.
RESERVED_DESCRIPTORS = 128
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: text/plain\r\n"
    b"content-length: 26\r\nconnection: close\r\n\r\nToo many connections; retry"
)
_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 22\r\n"
    b"connection: close\r\n\r\nRequest not sent in time"
)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_seconds: float
    body_seconds: float

    @classmethod
    def of(cls, server: ServerConfig) -> ConnectionLimits:
        """The configured limits, the connection cap within what the open-file limit allows."""
        allowed = connection_limit(server.max_connections)
        return cls(allowed, server.header_timeout_seconds, server.body_timeout_seconds)


class GuardedHttpProtocol(HttpToolsProtocol):
    """httptools' protocol with read deadlines and a connection cap (see the module's docstring)."""

    limits: ClassVar[ConnectionLimits]

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
        return type("GuardedHttpProtocol", (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a further request on a kept-alive connection
            self._arm(self.limits.header_seconds)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.limits.body_seconds)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_TIMEOUT)
        self.transport.close()


class OncePerSecond(logging.Filter):
    """Lets a message through at most once a second (the accept loop repeats it by thousands)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self._last = 0.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        now = time.monotonic()
        if now - self._last < 1.0:
            self.suppressed += 1
            return False
        self._last = now
        return True


ACCEPT_ERROR = "socket.accept() out of system resource"


def quiet_accept_errors() -> None:
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, OncePerSecond) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(OncePerSecond(ACCEPT_ERROR))


def connection_limit(wanted: int) -> int:
    """`wanted`, raising the soft open-file limit towards the hard one to make room for it; less
    (with a warning) when even the hard limit does not leave RESERVED_DESCRIPTORS beside it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    allowed = max(soft - RESERVED_DESCRIPTORS, soft // 2, 1)
    log.warning(
        "server.max_connections_lowered",
        wanted=wanted,
        allowed=allowed,
        open_file_limit=soft,
        hint="raise the limit (ulimit -n, systemd LimitNOFILE=) or lower server.max_connections",
    )
    return allowed


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def http_part(app: FastAPI, settings: Settings, *, host: str, port: int) -> Part:
    """A listener for `app` on host:port, as a part of the service."""
    server_config = settings.server
    limits = ConnectionLimits.of(server_config)
    limits = ConnectionLimits(
        connection_limit(limits.max_connections), limits.header_seconds, limits.body_seconds
    )
    quiet_accept_errors()

    async def run(stopping: asyncio.Event) -> None:
        server = _Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                http=GuardedHttpProtocol.with_limits(limits),
                log_config=None,
                proxy_headers=True,
                forwarded_allow_ips=server_config.forwarded_allow_ips,
                timeout_graceful_shutdown=10,
                timeout_keep_alive=server_config.keep_alive_seconds,
            )
        )
        serving = asyncio.create_task(server.serve())
        stopped = asyncio.create_task(stopping.wait())
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        stopped.cancel()
        await serving
        if not server.started:
            raise OSError(f"could not listen on {host}:{port}")

    return run


def web_part(app: FastAPI, settings: Settings) -> Part:
    return http_part(app, settings, host=settings.server.host, port=settings.server.port)
