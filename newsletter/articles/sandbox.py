"""Parsing untrusted feed bytes in a child process, within a memory ceiling and a deadline.

feedparser falls back to a pure-Python parser for any document that is not well-formed XML, and
that parser has no limits of its own: a 9 MB body of unclosed nested tags took 49 s and 1.1 GB
here, inside the 10 MB size cap. A thread cannot be stopped or bounded, a process can: the child
(forked from a forkserver that has the parsing modules loaded) gets an address-space limit and is
killed at the deadline, and the service carries on.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext

from newsletter.articles.entries import EntryBatch, FeedSource, articles_from_feed
from newsletter.articles.inputs import ArticleRules
from newsletter.articles.parse import NotAFeed, parse_feed
from newsletter.errors import NewsletterError

PARSE_SECONDS = 60.0
PARSE_MEMORY_BYTES = 512 * 1024 * 1024  # on top of what the child has mapped when it starts

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


def read_entries(job: ReadJob) -> tuple[EntryBatch, str | None]:
    """Parse and clean in this process: the articles, and a warning for a malformed feed."""
    parsed = parse_feed(job.body, content_type=job.content_type, location=job.location)
    return articles_from_feed(parsed, job.source, job.rules, job.now), parsed.warning


def read_entries_isolated(
    job: ReadJob, *, seconds: float = PARSE_SECONDS, memory_bytes: int = PARSE_MEMORY_BYTES
) -> tuple[EntryBatch, str | None]:
    """read_entries in a child process. Blocking: call it through asyncio.to_thread.
    Raises NotAFeed as read_entries does, and ParseLimitExceeded."""
    context = _forkserver()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, job, memory_bytes), name="feed-parser", daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise ParseLimitExceeded(f"parsing took longer than {seconds:g} s")
        kind, value = receiver.recv()
    except EOFError:
        raise ParseLimitExceeded("the parser ran out of memory or crashed") from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    if kind == "not_a_feed":
        raise NotAFeed(value)
    if kind == "memory":
        raise ParseLimitExceeded(f"parsing needed more than {memory_bytes // 2**20} MB")
    raise ParseLimitExceeded(f"the parser failed: {value}")


def _forkserver() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        _context = context
    return _context


def _child(sender: Connection, job: ReadJob, memory_bytes: int) -> None:
    _limit_memory(memory_bytes)
    outcome: tuple[str, object]
    try:
        outcome = ("ok", read_entries(job))
    except NotAFeed as exc:
        outcome = ("not_a_feed", str(exc))
    except MemoryError:
        outcome = ("memory", None)
    except Exception as exc:  # reported to the parent, which names the feed
        outcome = ("error", f"{type(exc).__name__}: {exc}"[:500])
    sender.send(outcome)
    sender.close()


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
