"""Feed bytes to feedparser entries, with entity declarations taken out first.

feedparser keeps "safe" internal entities (plain text, no nesting) of a document's DTD. Nesting
is refused, so the classic billion laughs stays small, but one 100 kB entity referenced 20,000
times is "safe": expat stops at its amplification limit, feedparser then falls back to its loose
parser, which expands every reference (measured: 50 s and 5.9 GB for a 2 MB document). Feeds have
no use for a DTD, so the whole DOCTYPE goes before feedparser sees the document.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser
from feedparser.encodings import convert_to_utf8

from newsletter.errors import NewsletterError

# feedparser's notes that say nothing about the content (a text/xml feed without a charset).
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY[^>]*>", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<\w")
_FEED_TYPES = ("application/rss+xml", "application/atom+xml")
_DOCTYPE_TOKEN = re.compile(rb"[\"'\[\]>]|<!--")
_CLOSING = {b'"': b'"', b"'": b"'", b"<!--": b"-->"}
_HTML_START = re.compile(
    r"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)


class NotAFeed(NewsletterError, ValueError):
    """The document is not RSS or Atom (an HTML page, an error page, garbage)."""


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str | None
    version: str
    entries: list[Any]
    warning: str | None


def parse_feed(data: bytes, *, content_type: str | None = None, location: str | None = None) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0 or Atom; raise NotAFeed when nothing feed-like is in `data`.
    `location` (the URL it came from) only completes error messages. Blocking: run in a thread."""
    probe: dict[str, Any] = {}
    utf8 = without_entity_declarations(convert_to_utf8({"content-type": content_type} if content_type else {},
                                                       data, probe))  # fmt: skip
    # No base URL for feedparser: it would resolve a bare RSS guid "12345" into a URL, merging the
    # stories of two feeds on one host. Entry links are resolved by the caller instead.
    result = feedparser.parse(
        io.BytesIO(utf8),
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries = list(result.get("entries", []))
    version = str(result.get("version") or "")
    problem = result.get("bozo_exception") if result.get("bozo") else probe.get("bozo_exception")
    if not entries and not version:
        raise NotAFeed(_not_a_feed(utf8, problem, location))
    warning = None
    if problem is not None and not isinstance(problem, _HARMLESS):
        warning = f"malformed feed, kept the {len(entries)} entries that parsed: {_describe(problem)}"
    feed = result.get("feed", {})
    return ParsedFeed(
        title=str(feed.get("title", "")),
        link=feed.get("link") or None,
        version=version,
        entries=entries,
        warning=warning,
    )


def without_entity_declarations(utf8: bytes) -> bytes:
    """The document with its DOCTYPE (internal subset and all) removed from the prolog, and no
    <!ENTITY> left where feedparser looks for declarations to keep (before the first element)."""
    position = 0
    while match := _PROLOG_ITEM.match(utf8, position):
        if match.end() == position:
            break
        position = match.end()
    if utf8.startswith(b"<!DOCTYPE", position):
        utf8 = utf8[:position] + utf8[_doctype_end(utf8, position) :]
    while True:
        first = _FIRST_ELEMENT.search(utf8)
        head_end = first.start() if first else len(utf8)
        declaration = _ENTITY_DECLARATION.search(utf8, 0, head_end + 1)
        if declaration is None:
            return utf8
        utf8 = utf8[: declaration.start()] + utf8[declaration.end() :]


def _doctype_end(data: bytes, start: int) -> int:
    """Index just past the DOCTYPE starting at `start`, skipping quoted strings, comments and
    the bracketed internal subset; the end of the data when it never closes."""
    index, depth, size = start + len(b"<!DOCTYPE"), 0, len(data)
    while (token := _DOCTYPE_TOKEN.search(data, index)) is not None:
        found = token.group()
        index = token.end()
        if found in (b'"', b"'", b"<!--"):
            close = data.find(_CLOSING[found], index)
            if close < 0:
                return size
            index = close + len(_CLOSING[found])
        elif found == b"[":
            depth += 1
        elif found == b"]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            return index
    return size


def _not_a_feed(utf8: bytes, problem: object, location: str | None) -> str:
    text = utf8[:65536].decode("utf-8", "replace")
    text = re.sub(r"^<\?xml[^>]*\?>\s*", "", text)
    if _HTML_START.match(text):
        advertised = _advertised_feed(text)
        if advertised and location:
            advertised = urljoin(location, advertised)
        hint = f"; the page names a feed at {advertised}" if advertised else ""
        return f"not a feed: an HTML page{hint}"
    if problem is not None:
        return f"not a feed: {_describe(problem)}"
    return "not a feed: no RSS or Atom content"


def _describe(problem: object) -> str:
    text = str(problem).strip() or type(problem).__name__
    return text.replace("<unknown>:", "line ", 1) if text.startswith("<unknown>:") else text


class _FeedLinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: (value or "") for name, value in attrs}
        kind = values.get("type", "").lower()
        alternate = tag == "link" and "alternate" in values.get("rel", "").lower().split()
        if alternate and self.href is None and kind in _FEED_TYPES and values.get("href"):
            self.href = values["href"]


def _advertised_feed(page: str) -> str | None:
    """The feed an HTML page points to with <link rel="alternate" type="application/rss+xml">."""
    finder = _FeedLinkFinder()
    finder.feed(page)
    return finder.href
