"""A few feed-parsing sandboxes, started once and kept, each parsing one feed at a time.

Starting a sandbox costs far more than parsing a small feed (a child started from the `newsletter`
script imports that script, the whole CLI, before its first job: about a second), so a poll of 50
feeds spent most of a minute starting processes. Kept sandboxes keep the guarantees of one per
feed: every feed gets the deadline and its own memory ceiling; a feed that passes either, or
crashes its sandbox, gets that sandbox killed (a new one takes its place when next needed) and is
reported as before; the other feeds go on in the others. What keeping adds, one heap for the
feeds a sandbox parses one after another, is bounded by starting it again after
FEEDS_PER_SANDBOX feeds and after any parser fault.

concurrent.futures.ProcessPoolExecutor cannot do this: it cannot stop one task, and a worker
that dies breaks the whole pool. The pipe work blocks, so it runs on a thread per sandbox;
feeds wait for one in that executor's queue, not on the event loop or its default executor.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from newsletter.articles.metrics import SANDBOXES_STARTED
from newsletter.articles.sandbox import (
    PARSE_MEMORY_BYTES,
    PARSE_SECONDS,
    Entries,
    ParseLimitExceeded,
    ReadJob,
    Sandbox,
)
from newsletter.errors import NewsletterError

FEEDS_PER_SANDBOX = 200


class ParsersClosed(NewsletterError, RuntimeError):
    """The feed parsers were shut down: the service is stopping."""


@dataclass(eq=False)
class _Call:
    job: ReadJob
    abandoned: bool = False


def default_size() -> int:
    return min(2, os.cpu_count() or 1)


class FeedParsers:
    """`async with FeedParsers() as parsers: await parsers.read(job)`; or the process's own,
    shared_parsers(). Usable from any event loop and thread."""

    def __init__(
        self,
        size: int | None = None,
        *,
        seconds: float = PARSE_SECONDS,
        memory_bytes: int = PARSE_MEMORY_BYTES,
        feeds_per_sandbox: int = FEEDS_PER_SANDBOX,
    ) -> None:
        self.size = size or default_size()
        self.seconds = seconds
        self.memory_bytes = memory_bytes
        self.feeds_per_sandbox = feeds_per_sandbox
        self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="feed-parser")
        self._lock = threading.Lock()
        self._idle: list[Sandbox] = []
        self._busy: dict[_Call, Sandbox] = {}
        self._closed = False
        self._warmed = False

    async def read(self, job: ReadJob) -> Entries:
        """read_entries in a sandbox. Raises NotAFeed as read_entries does, ParseLimitExceeded,
        and ParsersClosed once closed."""
        call = _Call(job)
        with self._lock:
            if self._closed:
                raise ParsersClosed("the feed parsers are shut down")
            future = self._threads.submit(self._run, call)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            self._abandon(call)
            raise

    def warm(self) -> None:
        """Start the sandboxes now, on the pool's threads, without waiting: starting them (the
        forkserver, then each child) takes longer than fetching the other feeds, which goes on
        meanwhile. An ingest calls it at its first feed with something to parse, so a poll that
        parses nothing (every feed 304) starts no process."""
        with self._lock:
            if self._closed or self._warmed:
                return
            self._warmed = True
            missing = self.size - len(self._idle) - len(self._busy)
            for _ in range(missing):
                SANDBOXES_STARTED.inc()
                self._threads.submit(self._start_one)

    def _start_one(self) -> None:
        try:
            sandbox = Sandbox(self.memory_bytes)
        except ParseLimitExceeded:
            return  # a feed's own call starts one again, and reports it if that fails too
        with self._lock:
            keep = not self._closed
            if keep:
                self._idle.append(sandbox)
        if not keep:
            sandbox.close()

    def pids(self) -> list[int]:
        """The sandboxes' process ids, idle and busy."""
        with self._lock:
            sandboxes = [*self._idle, *self._busy.values()]
        return [sandbox.pid for sandbox in sandboxes if sandbox.pid is not None]

    def close(self) -> None:
        """Kill the busy sandboxes (their feeds fail), end the idle ones, wait for all. Blocking:
        from the event loop, `await aclose()`."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            for sandbox in self._busy.values():
                sandbox.kill()
        self._threads.shutdown(wait=True)
        for sandbox in idle:
            sandbox.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> FeedParsers:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    def _run(self, call: _Call) -> Entries:
        sandbox = self._check_out(call)
        try:
            return sandbox.read(call.job, self.seconds)
        finally:
            self._check_in(call, sandbox)

    def _check_out(self, call: _Call) -> Sandbox:
        with self._lock:
            if self._closed or call.abandoned:
                raise ParsersClosed("the feed parsers are shut down")
            sandbox = self._idle.pop() if self._idle else None
        if sandbox is not None and not sandbox.alive():  # killed while idle (the OOM killer)
            sandbox.close()
            sandbox = None
        if sandbox is None:
            SANDBOXES_STARTED.inc()
            sandbox = Sandbox(self.memory_bytes)
        with self._lock:
            stopped = self._closed or call.abandoned
            if not stopped:
                self._busy[call] = sandbox
        if stopped:
            sandbox.close()
            raise ParsersClosed("the feed parsers are shut down")
        return sandbox

    def _check_in(self, call: _Call, sandbox: Sandbox) -> None:
        with self._lock:
            del self._busy[call]
            keep = sandbox.usable and sandbox.feeds < self.feeds_per_sandbox and not self._closed
            if keep:
                self._idle.append(sandbox)
        if not keep:
            sandbox.close()

    def _abandon(self, call: _Call) -> None:
        """Its caller was cancelled: free its sandbox now rather than at the deadline."""
        with self._lock:
            call.abandoned = True
            sandbox = self._busy.get(call)
            if sandbox is not None:
                sandbox.kill()


_shared: FeedParsers | None = None
_shared_pid: int | None = None
_shared_lock = threading.Lock()


def shared_parsers() -> FeedParsers:
    """This process's parsers: started on first use, closed at exit."""
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid():  # a forked child starts its own
            if _shared is None:
                atexit.register(_close_shared)
            _shared, _shared_pid = FeedParsers(), os.getpid()
        return _shared


def _close_shared() -> None:
    if _shared is not None and _shared_pid == os.getpid():
        _shared.close()
