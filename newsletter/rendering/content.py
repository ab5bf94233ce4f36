"""What a digest shows of each article: safe links, re-sanitised summaries, labels."""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import nh3
from markupsafe import Markup

from newsletter.database.models import Article
from newsletter.rendering.links import web_url, with_utm

UNSECTIONED = "More news"
SUMMARY_TAGS = {"p", "br", "a", "b", "i", "em", "strong"}
_PARAGRAPH_END = re.compile(r"</p\s*>|<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class ArticleView:
    title: str
    url: str  # absolute http(s) with UTM parameters, or "" when the article's link is unusable
    image_url: str
    section: str
    byline: str
    summary_html: Markup
    summary_text: str


def _absolute_href(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return web_url(value) or None
    return value


def summary_html(summary: str) -> Markup:
    """Summaries come sanitised from ingest; clean again, keeping a few inline tags and
    absolute links only, since a pushed article or an old row may not have been."""
    cleaned = nh3.clean(
        summary,
        tags=SUMMARY_TAGS,
        attributes={"a": {"href"}},
        attribute_filter=_absolute_href,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
    )
    return Markup(cleaned.strip())


def plain(markup: str) -> str:
    """Text of an HTML fragment, entities decoded, paragraphs kept apart by a blank line."""
    paragraphs = _PARAGRAPH_END.sub("\n\n", markup).split("\n\n")
    texts = (" ".join(html.unescape(nh3.clean(part, tags=set())).split()) for part in paragraphs)
    return "\n\n".join(text for text in texts if text)


def one_line(text: str) -> str:
    return " ".join(text.split())


def wrap(text: str, width: int = 72, indent: str = "") -> str:
    """Wrap each paragraph for the plain-text part; long words (URLs) are never broken."""
    return "\n\n".join(
        textwrap.fill(
            paragraph,
            width=width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for paragraph in text.split("\n\n")
    )


def date_label(day: date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


def time_label(moment: datetime, zone: ZoneInfo) -> str:
    """`14:05 GMT`, `09:05 EST`: the clock time in `zone`, named so a reader elsewhere can tell."""
    local = moment.astimezone(zone)
    return f"{local:%H:%M} {zone_abbreviation(local)}"


def zone_abbreviation(local: datetime) -> str:
    """The zone's abbreviation (GMT, BST, EST), or `UTC+4` where tzdata has none but the offset
    (`+04`, `+0530`)."""
    name = local.tzname() or ""
    sign, digits = name[:1], name[1:]
    if sign not in ("+", "-") or not digits.isdigit():
        return name or "UTC"
    hours, minutes = int(digits[:2]), digits[2:4]
    return f"UTC{sign}{hours}" + (f":{minutes}" if minutes and minutes != "00" else "")


def article_view(article: Article, zone: ZoneInfo, utm: list[tuple[str, str]]) -> ArticleView:
    url = web_url(article.url)
    author = one_line(article.author or "")
    published = time_label(article.published_at, zone) if article.published_at else ""
    return ArticleView(
        title=one_line(article.title) or "(untitled)",
        url=with_utm(url, utm),
        image_url=web_url(article.image_url),
        section=one_line(article.section or "") or UNSECTIONED,
        byline=" · ".join(part for part in (author and f"By {author}", published) if part),
        summary_html=summary_html(article.summary or ""),
        summary_text=plain(article.summary or ""),
    )


def group_by_section(
    views: Sequence[ArticleView], order: Sequence[str]
) -> list[tuple[str, list[ArticleView]]]:
    """Sections in the configured order, then any others as they come, unsectioned last."""
    groups: dict[str, list[ArticleView]] = {}
    for view in views:
        groups.setdefault(view.section, []).append(view)
    rank = {name: index for index, name in enumerate(order)}
    names = sorted(
        groups,
        key=lambda name: (name == UNSECTIONED, rank.get(name, len(rank)), list(groups).index(name)),
    )
    return [(name, groups[name]) for name in names]
