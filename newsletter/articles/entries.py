"""feedparser entries to tidy ArticleInputs, or a counted reason for skipping each."""

from __future__ import annotations

import calendar
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from newsletter.articles.clean import absolute_url, first_image, plain_text, truncate_text
from newsletter.articles.inputs import AUTHOR_COLUMN, SECTION_CHARS, ArticleInput, ArticleRules, tidy
from newsletter.articles.parse import ParsedFeed

_GLOBAL_ID_PREFIXES = ("http://", "https://", "tag:", "urn:")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
MAX_GUID_CHARS = 1000
# Enough of an entry's text to tidy; the rest of a full-text feed is never shown.
MAX_TITLE_SOURCE = 2000
MAX_SUMMARY_SOURCE = 100_000


@dataclass(frozen=True)
class FeedSource:
    """Where entries come from: `feed_url` keys guids and is stored; `base` resolves relative links."""

    feed_url: str
    base: str | None
    default_section: str | None = None


@dataclass
class EntryBatch:
    articles: list[ArticleInput] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def articles_from_feed(
    parsed: ParsedFeed, source: FeedSource, rules: ArticleRules, now: datetime
) -> EntryBatch:
    """Every entry as a tidy ArticleInput; entries without a title or a usable link are skipped.
    Relative links resolve against the feed's own URL, else (a file) the channel's link."""
    base = source.base or absolute_url(parsed.link)
    # Atom's names and categories are text; RSS has no types and is read as feedparser reads
    # its titles, as HTML. Either way each is reduced to text exactly once.
    names_are_html = not parsed.version.startswith("atom")
    batch = EntryBatch()
    for entry in parsed.entries:
        article = _article(entry, source, base, now, names_are_html)
        if isinstance(article, str):
            batch.skipped[article] += 1
        else:
            batch.articles.append(article)
    if len(batch.articles) > rules.max_entries:
        batch.skipped[OVER_THE_CAP] += len(batch.articles) - rules.max_entries
        batch.articles = _newest(batch.articles, rules.max_entries)
    batch.articles = [tidy(article, rules) for article in batch.articles]
    return batch


OVER_THE_CAP = "over articles.max_entries_per_feed"


def _newest(articles: list[ArticleInput], count: int) -> list[ArticleInput]:
    """The `count` most recent, in feed order; undated entries count as the oldest."""
    oldest = datetime.min.replace(tzinfo=UTC)
    ranked = sorted(range(len(articles)), key=lambda i: articles[i].published_at or oldest, reverse=True)
    kept = sorted(ranked[:count])
    return [articles[i] for i in kept]


def _article(
    entry: Any, source: FeedSource, base: str | None, now: datetime, names_are_html: bool
) -> ArticleInput | str:
    """The entry as an ArticleInput, or the reason it cannot be one."""
    title = _text(entry, "title")
    if not title:
        return "no title"
    link = absolute_url(entry.get("link"), base)
    if link is None:
        return "no link" if not entry.get("link") else "link not an absolute http(s) URL"
    summary = _summary_html(entry)[:MAX_SUMMARY_SOURCE]
    try:
        return ArticleInput(
            title=truncate_text(title, MAX_TITLE_SOURCE),
            url=link,
            summary=summary,
            author=_author(entry, names_are_html),
            section=source.default_section or _first_category(entry, names_are_html),
            image_url=_image(entry, link, summary),
            published_at=_published(entry, now),
            guid=global_guid(entry.get("id"), source.feed_url),
            feed_url=source.feed_url,
        )
    except ValidationError as exc:
        return f"invalid {exc.errors()[0]['loc'][0]}"


def global_guid(entry_id: object, feed_url: str) -> str | None:
    """The entry's id when it is a URL or URN, else "<feed url>#<id>": a bare "12345" in two
    feeds is two stories. Over-long ids are replaced by their hash."""
    if not isinstance(entry_id, str) or not entry_id.strip():
        return None
    entry_id = entry_id.strip()
    guid = entry_id if entry_id.lower().startswith(_GLOBAL_ID_PREFIXES) else f"{feed_url}#{entry_id}"
    if len(guid) > MAX_GUID_CHARS:
        guid = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    return guid


def _text(entry: Any, key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        return ""
    detail = entry.get(f"{key}_detail") or {}
    return plain_text(value, is_html=detail.get("type") in _HTML_TYPES)


def _summary_html(entry: Any) -> str:
    """The entry's summary (else its first content) as HTML, plain text escaped to HTML."""
    candidates = [entry.get("summary_detail")] + list(entry.get("content") or [])
    for detail in candidates:
        if detail and isinstance(detail.get("value"), str) and detail["value"].strip():
            value: str = detail["value"]
            if detail.get("type") in _HTML_TYPES:
                return value
            return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    summary = entry.get("summary")
    return summary if isinstance(summary, str) else ""


def _author(entry: Any, is_html: bool) -> str | None:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") or entry.get("author")
    if not isinstance(name, str):
        return None
    return truncate_text(plain_text(name, is_html=is_html), AUTHOR_COLUMN) or None


def _first_category(entry: Any, is_html: bool) -> str | None:
    for tag in entry.get("tags") or []:
        term = tag.get("label") or tag.get("term")
        if isinstance(term, str) and term.strip():
            return truncate_text(plain_text(term, is_html=is_html), SECTION_CHARS) or None
    return None


def _image(entry: Any, link: str, summary: str) -> str | None:
    """media:content (the widest image), media:thumbnail, an image enclosure, else the summary's
    first <img>."""
    media = [m for m in entry.get("media_content") or [] if _is_image(m, "url")]
    media.sort(key=lambda m: _int(m.get("width")), reverse=True)
    candidates = [m.get("url") for m in media]
    candidates += [m.get("url") for m in entry.get("media_thumbnail") or []]
    candidates += [e.get("href") for e in entry.get("enclosures") or [] if _is_image(e, "href", strict=True)]
    for candidate in candidates:
        url = absolute_url(candidate, link)
        if url:
            return url
    return first_image(summary, link)


def _is_image(media: Any, key: str, *, strict: bool = False) -> bool:
    kind = str(media.get("type") or "").lower()
    medium = str(media.get("medium") or "").lower()
    if kind.startswith("image/") or medium == "image":
        return True
    if kind or medium:
        return False
    url = str(media.get(key) or "").lower().split("?", 1)[0]
    return not strict or url.endswith(_IMAGE_SUFFIXES)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _published(entry: Any, now: datetime) -> datetime | None:
    """Publication (else update) time in UTC; None when missing or in the future."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: FeedParserDict.get maps a missing updated_parsed onto published_parsed, with a warning.
        parsed = dict.get(entry, key)
        if parsed:
            try:
                when = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, OSError, ValueError):
                return None
            return when if when <= now else None
    return None
