"""The kept sandboxes: reused across feeds, replaced when a feed runs over its limits or its
sandbox dies, every process ended at shutdown. Real processes and real feeds, no stand-ins."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from newsletter.articles import ingest_feeds
from newsletter.articles.entries import FeedSource
from newsletter.articles.inputs import ArticleRules
from newsletter.articles.parsers import FeedParsers, ParsersClosed
from newsletter.articles.sandbox import ParseLimitExceeded, ReadJob
from newsletter.config import FeedConfig
from tests.articles.conftest import ContextFactory
from tests.articles.feeds import rss, rss_item
from tests.support.http import FeedServer, Route

# 20 s or more of feedparser's lenient parsing, in a few MB.
COSTLY = b'<rss version="2.0"><channel><title>t</title><item><title>' + b"<" * 10_000_000
# Unclosed nested tags: the lenient parser grows without bound.
GREEDY = b"<rss version='2.0'><channel><item><title>x</title><description>" + b"<b>" * 1_000_000


def job_for(document: bytes) -> ReadJob:
    return ReadJob(
        document, None, None, FeedSource("f", "https://news.example/"), ArticleRules(), datetime.now(UTC)
    )


def good(n: int) -> ReadJob:
    return job_for(rss(rss_item(f"Story {n}", f"https://news.example/{n}")))


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def busy(*pids: int) -> None:
    """Until one of the sandboxes `pids` is working on a job (an idle one uses no CPU)."""
    before = [cpu_ticks(pid) for pid in pids]
    deadline = time.monotonic() + 30
    while all(cpu_ticks(pid) < ticks + 5 for pid, ticks in zip(pids, before, strict=True)):
        assert time.monotonic() < deadline, "no sandbox started the job"
        await asyncio.sleep(0.02)


async def titles(parsers: FeedParsers, numbers: range) -> list[str]:
    results = await asyncio.gather(*(parsers.read(good(n)) for n in numbers))
    return [article.title for batch, _ in results for article in batch.articles]


async def test_many_feeds_are_parsed_by_few_kept_processes() -> None:
    async with FeedParsers(2) as parsers:
        seen: set[int] = set()
        for start in range(0, 40, 10):
            numbers = range(start, start + 10)
            assert await titles(parsers, numbers) == [f"Story {n}" for n in numbers]
            seen.update(parsers.pids())
        assert 1 <= len(seen) <= 2
        assert not any(gone(pid) for pid in seen)


async def test_warm_starts_the_sandboxes_before_any_feed_and_feeds_use_them() -> None:
    async with FeedParsers(2) as parsers:
        parsers.warm()
        parsers.warm()  # once is enough: no more than `size` are started
        deadline = time.monotonic() + 60
        while len(parsers.pids()) < 2:  # started in the background, no feed asked for
            assert time.monotonic() < deadline, "the sandboxes did not start"
            await asyncio.sleep(0.02)
        warmed = set(parsers.pids())
        assert await titles(parsers, range(6)) == [f"Story {n}" for n in range(6)]
        assert set(parsers.pids()) == warmed
    assert all(gone(pid) for pid in warmed)


async def test_a_sandbox_is_started_again_after_so_many_feeds() -> None:
    async with FeedParsers(1, feeds_per_sandbox=3) as parsers:
        seen: list[int] = []
        for n in range(7):
            assert await titles(parsers, range(n, n + 1)) == [f"Story {n}"]
            seen += [pid for pid in parsers.pids() if pid not in seen]
        assert len(seen) == 3
        assert all(gone(pid) for pid in seen[:2])


async def test_a_feed_past_its_deadline_kills_only_its_sandbox() -> None:
    async with FeedParsers(2, seconds=3) as parsers:
        slow = asyncio.create_task(parsers.read(job_for(COSTLY)))
        while len(parsers.pids()) < 2:  # the slow feed's sandbox has started, and another
            assert await titles(parsers, range(1)) == ["Story 0"]
        both = set(parsers.pids())
        # The other sandbox parses these while the slow feed holds the first one.
        assert await titles(parsers, range(5)) == [f"Story {n}" for n in range(5)]
        assert not slow.done()
        with pytest.raises(ParseLimitExceeded, match="longer than 3 s"):
            await slow
        [kept] = parsers.pids()
        [killed] = both - {kept}
        assert gone(killed)
        assert await titles(parsers, range(5, 10)) == [f"Story {n}" for n in range(5, 10)]
        assert kept in parsers.pids()


async def test_a_feed_over_the_memory_ceiling_kills_only_its_sandbox() -> None:
    async with FeedParsers(1, memory_bytes=64 * 1024 * 1024) as parsers:
        await titles(parsers, range(1))
        [first] = parsers.pids()
        with pytest.raises(ParseLimitExceeded, match="more than 64 MB|ran out of memory"):
            await parsers.read(job_for(GREEDY))
        assert gone(first)
        assert await titles(parsers, range(3)) == ["Story 0", "Story 1", "Story 2"]
        [second] = parsers.pids()
        assert second != first


async def test_a_sandbox_killed_mid_parse_fails_its_feed_and_is_replaced() -> None:
    async with FeedParsers(1) as parsers:
        await titles(parsers, range(1))
        [first] = parsers.pids()
        slow = asyncio.create_task(parsers.read(job_for(COSTLY)))
        await busy(first)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(ParseLimitExceeded, match="the parser ran out of memory or crashed"):
            await slow
        assert await titles(parsers, range(3)) == ["Story 0", "Story 1", "Story 2"]
        [second] = parsers.pids()
        assert second != first and gone(first)


async def test_an_idle_sandbox_that_died_is_replaced_without_failing_a_feed() -> None:
    async with FeedParsers(1) as parsers:
        await titles(parsers, range(1))
        [first] = parsers.pids()
        os.kill(first, signal.SIGKILL)
        while not gone(first):  # until the forkserver has reaped it
            await asyncio.sleep(0.01)
        assert await titles(parsers, range(1)) == ["Story 0"]
        assert parsers.pids() != [first]


async def test_a_cancelled_parse_frees_its_sandbox_at_once() -> None:
    async with FeedParsers(1) as parsers:
        await titles(parsers, range(1))
        [first] = parsers.pids()
        slow = asyncio.create_task(parsers.read(job_for(COSTLY)))
        await busy(first)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        started = time.monotonic()
        assert await titles(parsers, range(1)) == ["Story 0"]
        assert time.monotonic() - started < 15  # not the 60 s deadline of the abandoned feed
        assert gone(first)


async def test_shutdown_ends_every_sandbox_busy_or_idle() -> None:
    parsers = FeedParsers(2)
    await titles(parsers, range(4))
    slow = asyncio.create_task(parsers.read(job_for(COSTLY)))
    while len(parsers.pids()) < 2:  # the slow feed in one sandbox, the other idle
        await titles(parsers, range(1))
    pids = parsers.pids()
    await busy(*pids)
    await parsers.aclose()
    with pytest.raises(ParseLimitExceeded, match="crashed"):
        await slow
    assert parsers.pids() == []
    assert all(gone(pid) for pid in pids)
    with pytest.raises(ParsersClosed):
        await parsers.read(good(1))


async def test_ingest_reports_a_feed_that_hangs_its_parser_and_stores_the_others(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    hanging = FeedConfig(url=feed_server.route("/hang.xml", Route(body=COSTLY)), allow_private=True)
    feeds = [
        FeedConfig(url=feed_server.route(f"/{n}.xml", Route(body=good(n).body)), allow_private=True)
        for n in range(6)
    ]
    failures_before = REGISTRY.get_sample_value("newsletter_feed_errors_total", {"kind": "too_costly"}) or 0
    async with FeedParsers(2, seconds=2) as parsers:
        reports = await ingest_feeds(context, [hanging, *feeds], parsers=parsers)
    assert reports[0].error == "parsing took longer than 2 s"
    assert [report.new for report in reports[1:]] == [1] * 6
    assert all(report.error is None for report in reports[1:])
    failures = REGISTRY.get_sample_value("newsletter_feed_errors_total", {"kind": "too_costly"})
    assert failures == failures_before + 1
