"""Parsing hostile and broken documents: entity bombs, huge or costly bodies, HTML pages, encodings."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

import feedparser
import pytest

from newsletter.articles.entries import FeedSource
from newsletter.articles.inputs import ArticleRules
from newsletter.articles.parse import NotAFeed, parse_feed, without_entity_declarations
from newsletter.articles.parsers import FeedParsers
from newsletter.articles.sandbox import ParseLimitExceeded, ReadJob
from tests.articles.feeds import rss, rss_item

ITEM_END = b"</title><link>https://news.example/x</link></item></channel></rss>"
RSS_START = b'<rss version="2.0"><channel><title>t</title><item><title>'


def billion_laughs() -> bytes:
    levels = [b'<!ENTITY lol "lol">'] + [
        b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    ]
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
        + b"\n".join(levels)
        + b"\n]>\n"
        + RSS_START
        + b"&lol9;"
        + ITEM_END
    )


def quadratic(entity_bytes: int = 100_000, references: int = 20_000, *, layout: str = "lines") -> bytes:
    """One big "safe" entity referenced many times: the blow-up feedparser lets through."""
    declaration = b'<!ENTITY a "' + b"x" * entity_bytes + b'">'
    body = RSS_START + b"&a;" * references + ITEM_END
    prolog = b'<?xml version="1.0"?>\n'
    if layout == "lines":
        return prolog + b"<!DOCTYPE rss [\n" + declaration + b"\n]>\n" + body
    if layout == "one line":
        return prolog + b"<!DOCTYPE rss [" + declaration + b"]>" + body
    if layout == "tag in an entity value":  # ends feedparser's idea of the prolog early
        return prolog + b'<!DOCTYPE rss [<!ENTITY t "<b>">\n' + declaration + b"\n]>\n" + body
    if layout == "in a comment":
        return prolog + b"<!--\n" + declaration + b"\n-->\n<!DOCTYPE rss>\n" + body
    if layout == "after garbage":
        return prolog + b"garbage\n" + declaration + b"\n<!DOCTYPE rss>\n" + body
    assert layout == "utf-16"
    declared = quadratic(entity_bytes, references).replace(b'"1.0"?>', b'"1.0" encoding="utf-16"?>', 1)
    return declared.decode().encode("utf-16")


def measured(work: Callable[[], object]) -> tuple[object, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = work()
        return result, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_feedparser_alone_expands_a_big_safe_entity() -> None:
    """Why the DOCTYPE goes: feedparser keeps a non-nested entity and expands every reference."""
    document = quadratic(entity_bytes=10_000, references=200)
    title = feedparser.parse(document)["entries"][0]["title"]
    assert len(title) == 2_000_000


@pytest.mark.parametrize(
    "layout", ["lines", "one line", "tag in an entity value", "in a comment", "after garbage", "utf-16"]
)
def test_entity_expansion_is_refused(layout: str) -> None:
    # Unprotected, this document expands to 2 GB (measured: 50 s and 5.9 GB of memory).
    parsed, seconds, peak = measured(lambda: parse_feed(quadratic(layout=layout)))
    assert isinstance(parsed, type(parse_feed(rss(rss_item()))))
    [entry] = parsed.entries
    assert "xxxxxxxxxx" not in entry["title"]
    assert len(entry["title"]) <= 60_000  # the references stay as literal text
    assert peak < 64 * 1024 * 1024
    assert seconds < 30  # generous for a loaded machine; unprotected it is minutes


def test_billion_laughs_stays_small() -> None:
    parsed, _, peak = measured(lambda: parse_feed(billion_laughs()))
    [entry] = parsed.entries  # type: ignore[attr-defined]
    assert "lollol" not in entry["title"]
    assert peak < 16 * 1024 * 1024


def test_declarations_leave_the_prolog_only() -> None:
    document = (
        b'<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE rss [<!ENTITY a "]>">]>\n<rss>&a;<!ENTITY b "x"></rss>'
    )
    assert (
        without_entity_declarations(document)
        == b'<?xml version="1.0"?>\n<!-- c -->\n\n<rss>&a;<!ENTITY b "x"></rss>'
    )


def test_malformed_feed_keeps_what_parsed_with_a_warning() -> None:
    good = rss(rss_item("One", "https://news.example/1"), rss_item("Two", "https://news.example/2"))
    broken = good.replace(b"</channel></rss>", b"<item><title>Three &nbsp; & four</title></item>")
    parsed = parse_feed(broken)
    assert [entry["title"] for entry in parsed.entries][:2] == ["One", "Two"]
    assert parsed.warning is not None and parsed.warning.startswith("malformed feed, kept the 3 entries")


def test_html_page_is_not_a_feed_and_names_the_advertised_one() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>News</title>"
        b'<link rel="alternate" type="application/rss+xml" href="/feeds/all.xml"></head>'
        b"<body><h1>Welcome</h1></body></html>"
    )
    with pytest.raises(
        NotAFeed, match=r"an HTML page; the page names a feed at https://news\.example/feeds/all\.xml"
    ):
        parse_feed(page, content_type="text/html", location="https://news.example/index.html")
    with pytest.raises(NotAFeed, match="not a feed"):
        parse_feed(b"\x00\x01 binary junk \xff")
    with pytest.raises(NotAFeed):
        parse_feed(b"")


def test_iso_8859_1_and_utf_16_feeds() -> None:
    latin = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        + rss(rss_item("S\xe3o Paulo", "https://x.example/sp"))[38:]
    )
    assert parse_feed(latin).entries[0]["title"] == "S\u00e3o Paulo"
    wide = (
        rss(rss_item("\u65e5\u672c", "https://x.example/jp"))
        .decode()
        .replace("utf-8", "utf-16")
        .encode("utf-16")
    )
    assert parse_feed(wide).entries[0]["title"] == "\u65e5\u672c"


def job_for(document: bytes) -> ReadJob:
    return ReadJob(
        document, None, None, FeedSource("f", "https://news.example/"), ArticleRules(), datetime.now(UTC)
    )


async def test_isolated_parse_returns_articles() -> None:
    async with FeedParsers(1) as parsers:
        batch, warning = await parsers.read(job_for(rss(rss_item("Isolated", "https://news.example/i"))))
        assert [article.title for article in batch.articles] == ["Isolated"]
        assert warning is None
        with pytest.raises(NotAFeed):
            await parsers.read(job_for(b"<html><body>no</body></html>"))


async def test_isolated_parse_is_stopped_at_its_memory_ceiling() -> None:
    # Unclosed nested tags send feedparser to its lenient parser, which grows without bound.
    nested = b"<rss version='2.0'><channel><item><title>x</title><description>" + b"<b>" * 1_000_000
    async with FeedParsers(1, memory_bytes=64 * 1024 * 1024) as parsers:
        with pytest.raises(ParseLimitExceeded, match="more than 64 MB|ran out of memory"):
            await parsers.read(job_for(nested))


async def test_isolated_parse_is_stopped_at_its_deadline() -> None:
    costly = RSS_START + b"<" * 10_000_000 + ITEM_END  # 20 s or more of lenient parsing
    async with FeedParsers(1, seconds=0.2) as parsers:
        started = time.perf_counter()
        with pytest.raises(ParseLimitExceeded, match="longer than 0.2 s"):
            await parsers.read(job_for(costly))
        assert time.perf_counter() - started < 10  # the child was killed, not waited for
