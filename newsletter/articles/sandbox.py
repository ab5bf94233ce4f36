"""Parsing untrusted feed bytes in a child process, within a memory ceiling and a deadline.

feedparser falls back to a pure-Python parser for any document that is not well-formed XML, and
that parser has no limits of its own: a 9 MB body of unclosed nested tags took 49 s and 1.1 GB
here, inside the 10 MB size cap. A thread cannot be stopped or bounded, a process can: a sandbox
(forked from a forkserver that has the parsing modules loaded) parses one feed at a time, each
under an address-space limit, and is killed at the deadline or when it fails; the service carries
on. Sandboxes are kept for many feeds, a few at a time: see parsers.py.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext

from newsletter.articles.entries import EntryBatch, FeedSource, articles_from_feed
from newsletter.articles.inputs import ArticleRules
from newsletter.articles.parse import NotAFeed, parse_feed
from newsletter.errors import NewsletterError

PARSE_SECONDS = 60.0
PARSE_MEMORY_BYTES = 512 * 1024 * 1024  # on top of what the sandbox has mapped when a feed starts
# A new sandbox says it is ready within this (its own start is not counted in a feed's deadline).
START_SECONDS = 30.0
# An idle sandbox exits when its pipe closes; one that has not by then is killed.
STOP_SECONDS = 2.0

Entries = tuple[EntryBatch, str | None]

_context: ForkServerContext | None = None


class ParseLimitExceeded(NewsletterError, RuntimeError):
    """Parsing a feed took too long or too much memory, or the parser crashed."""


@dataclass(frozen=True)
class ReadJob:
    body: bytes
    content_type: str | None
    location: str | None
    source: FeedSource
    rules: ArticleRules
    now: datetime


def read_entries(job: ReadJob) -> Entries:
    """Parse and clean in this process: the articles, and a warning for a malformed feed."""
    parsed = parse_feed(job.body, content_type=job.content_type, location=job.location)
    return articles_from_feed(parsed, job.source, job.rules, job.now), parsed.warning


class Sandbox:
    """One child process that runs read_entries for one job at a time. Blocking; one thread
    drives it, and any thread may kill it."""

    def __init__(self, memory_bytes: int) -> None:
        context = _forkserver()
        self._connection, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(theirs, memory_bytes), name="feed-parser", daemon=True
        )
        self._process.start()
        theirs.close()
        self.memory_bytes = memory_bytes
        self.feeds = 0  # jobs sent to it
        self.usable = True
        self._wait_until_ready()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.is_alive()

    def _wait_until_ready(self) -> None:
        try:
            if self._connection.poll(START_SECONDS) and self._connection.recv() == "ready":
                return
        except (EOFError, OSError):
            pass
        self.kill()
        self.close()
        raise ParseLimitExceeded("the parser could not start")

    def read(self, job: ReadJob, seconds: float) -> Entries:
        """read_entries in the sandbox. Raises NotAFeed as read_entries does, and
        ParseLimitExceeded, after which the sandbox is not `usable` (and killed if it ran over)."""
        self.feeds += 1
        kind, value = self._exchange(job, seconds)
        if kind == "ok":
            return value  # type: ignore[return-value]
        if kind == "not_a_feed":
            raise NotAFeed(value)
        # After a MemoryError or a fault in the parser its heap may be in any state.
        self.usable = False
        if kind == "memory":
            raise ParseLimitExceeded(f"parsing needed more than {self.memory_bytes // 2**20} MB")
        raise ParseLimitExceeded(f"the parser failed: {value}")

    def _exchange(self, job: ReadJob, seconds: float) -> tuple[str, object]:
        try:
            self._connection.send(job)
            if not self._connection.poll(seconds):
                self.kill()
                raise ParseLimitExceeded(f"parsing took longer than {seconds:g} s")
            outcome: tuple[str, object] = self._connection.recv()
        except (EOFError, OSError):  # it died: the memory limit hit outside Python, or a crash
            self.kill()
            raise ParseLimitExceeded("the parser ran out of memory or crashed") from None
        return outcome

    def kill(self) -> None:
        self.usable = False
        self._process.kill()

    def close(self) -> None:
        """End the process (an idle one exits at the end of its pipe) and release it."""
        self._connection.close()
        self._process.join(STOP_SECONDS)
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join()
        self._process.close()


def _forkserver() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        # "__main__" spares each sandbox importing the program again (the `newsletter` script: the
        # whole CLI) on Pythons where CPython's gh-98552 is fixed; a no-op on the others.
        context.set_forkserver_preload(["__main__", __name__])
        _context = context
    return _context


def _serve(connection: Connection, memory_bytes: int) -> None:
    # Ctrl-C reaches the whole process group; the service, not its sandboxes, decides to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection.send("ready")
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        _limit_memory(memory_bytes)
        connection.send(_outcome(job))


def _outcome(job: ReadJob) -> tuple[str, object]:
    try:
        return ("ok", read_entries(job))
    except NotAFeed as exc:
        return ("not_a_feed", str(exc))
    except MemoryError:
        return ("memory", None)
    except Exception as exc:  # reported to the parent, which names the feed
        return ("error", f"{type(exc).__name__}: {exc}"[:500])


def _limit_memory(extra_bytes: int) -> None:
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return  # not Linux: the deadline still applies
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
