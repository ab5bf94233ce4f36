"""Feed text made safe and tidy: plain text, sanitised summaries, truncation, absolute, canonical URLs."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

import nh3

ELLIPSIS = "\u2026"
MAX_URL_CHARS = 2000

# The inline tags a summary may keep; everything else is reduced to its text.
SUMMARY_TAGS = frozenset({"a", "b", "i", "em", "strong"})
SUMMARY_ATTRIBUTES = {"a": {"href"}}
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# Tags removed together with everything inside them.
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "noscript", "template", "object", "embed", "svg", "math", "textarea",
     "select", "head", "title"}
)  # fmt: skip
_BLOCK_TAG = re.compile(
    r"<(/?(?:p|div|br|hr|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section|article"
    r"|header|footer|figure|figcaption|aside|nav)\b)",
    re.IGNORECASE,
)
_LINK_WITHOUT_HREF = re.compile(r'<a rel="noopener noreferrer">(.*?)</a>', re.DOTALL)
_EMPTY_LINK = re.compile(r'<a href="[^"]*" rel="noopener noreferrer">\s*</a>')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
_SPACE = re.compile(r"\s+")
_TRAILING_PUNCTUATION = " ,;:-\u2013\u2014([{"


def one_line(value: str) -> str:
    """Control characters dropped and every run of whitespace (line breaks included) made one space."""
    return _SPACE.sub(" ", _CONTROL.sub("", value)).strip()


def plain_text(value: str, *, is_html: bool) -> str:
    """Text for a title or a name. HTML loses its tags and has its entities decoded, once."""
    if is_html:
        value = html.unescape(
            nh3.clean(_spaced_blocks(value), tags=set(), clean_content_tags=DROPPED_WITH_CONTENT)
        )
    return one_line(value)


def sanitise_summary(value: str, *, base_url: str, max_chars: int) -> str:
    """A summary as safe HTML: only SUMMARY_TAGS, http(s)/mailto links made absolute against
    `base_url`, whitespace collapsed, and at most `max_chars` characters of text."""
    cleaned = _clean_html(_spaced_blocks(value), base_url)
    if len(text_of(cleaned)) <= max_chars:
        return cleaned
    return _clean_html(_HtmlTruncator(max_chars).run(cleaned), base_url)


def text_of(fragment: str) -> str:
    """The visible text of a sanitised fragment."""
    return html.unescape(nh3.clean(fragment, tags=set()))


def _clean_html(value: str, base_url: str) -> str:
    cleaned = nh3.clean(
        value,
        tags=set(SUMMARY_TAGS),
        attributes=SUMMARY_ATTRIBUTES,
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        url_schemes=set(SAFE_SCHEMES),
        url_relative=("rewrite_with_base", base_url),
    )
    # nh3's own output: links that lost their href keep just their text, empty links go.
    cleaned = _LINK_WITHOUT_HREF.sub(r"\1", cleaned)
    return one_line(_EMPTY_LINK.sub("", cleaned))


def _spaced_blocks(value: str) -> str:
    # Text of neighbouring paragraphs must not run together once their tags are gone.
    return _BLOCK_TAG.sub(r" <\1", value)


def truncate_text(text: str, max_chars: int) -> str:
    """At most `max_chars` characters, cut at a word boundary and ending in an ellipsis when cut."""
    if len(text) <= max_chars:
        return text
    return _cut_words(text, max_chars - 1, allow_empty=False) + ELLIPSIS


def _cut_words(text: str, budget: int, *, allow_empty: bool) -> str:
    """The longest prefix of `text` within `budget` characters that ends at a word boundary."""
    if len(text) <= budget:
        return text
    cut = text[:budget]
    if not text[budget].isspace():
        space = cut.rfind(" ")
        if space > 0 or allow_empty:
            cut = cut[: max(space, 0)]
    return cut.rstrip(_TRAILING_PUNCTUATION)


class _HtmlTruncator(HTMLParser):
    """Keeps the first `max_chars` characters of text of a sanitised fragment, closing open tags."""

    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.budget = max_chars - 1  # room for the ellipsis
        self.parts: list[str] = []
        self.open_tags: list[str] = []
        self.done = False

    def run(self, fragment: str) -> str:
        self.feed(fragment)
        self.close()
        return "".join(self.parts) + "".join(f"</{tag}>" for tag in reversed(self.open_tags))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        rendered = "".join(f' {name}="{html.escape(value or "")}"' for name, value in attrs)
        self.parts.append(f"<{tag}{rendered}>")
        self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.done or tag not in self.open_tags:
            return
        while self.open_tags:
            closing = self.open_tags.pop()
            self.parts.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.done:
            return
        if len(data) <= self.budget:
            self.parts.append(html.escape(data, quote=False))
            self.budget -= len(data)
            return
        emitted_text = any(not part.startswith("<") for part in self.parts)
        kept = _cut_words(data, self.budget, allow_empty=emitted_text)
        self.parts.append(html.escape(kept, quote=False).rstrip() + ELLIPSIS)
        self.done = True


def absolute_url(value: str | None, base: str | None = None) -> str | None:
    """`value` made absolute against `base`; None unless the result is a usable http(s) URL."""
    if not value:
        return None
    value = value.strip()
    if _CONTROL.search(value) or any(c.isspace() for c in value):
        return None
    try:
        joined = urljoin(base, value) if base else value
        parts = urlsplit(joined)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(joined) > MAX_URL_CHARS:
        return None
    return joined


def canonical_url(url: str) -> str:
    """The key two copies of one story share: scheme and host lower-cased, default port, fragment
    and utm_* parameters dropped; the path and the other parameters are kept as given."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not pair.split("=", 1)[0].lower().startswith("utm_")
    )
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


class _FirstImage(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.src: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and self.src is None:
            self.src = dict(attrs).get("src") or None


def first_image(fragment: str, base: str) -> str | None:
    """The absolute http(s) source of the first <img> of an HTML fragment."""
    finder = _FirstImage()
    finder.feed(fragment)
    finder.close()
    return absolute_url(finder.src, base)
