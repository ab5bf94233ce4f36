"""Small feed documents for tests, in each syndication format."""

from __future__ import annotations

from xml.sax.saxutils import escape


def rss_item(
    title: str | None = "A story",
    link: str | None = "https://news.example/a",
    *,
    guid: str | None = None,
    description: str | None = None,
    pub_date: str | None = "Sat, 07 Mar 2026 10:00:00 +0100",
    category: str | None = None,
    extra: str = "",
) -> str:
    parts = ["<item>"]
    if title is not None:
        parts.append(f"<title>{escape(title)}</title>")
    if link is not None:
        parts.append(f"<link>{escape(link)}</link>")
    if guid is not None:
        parts.append(f"<guid>{escape(guid)}</guid>")
    if description is not None:
        parts.append(f"<description>{escape(description)}</description>")
    if pub_date is not None:
        parts.append(f"<pubDate>{pub_date}</pubDate>")
    if category is not None:
        parts.append(f"<category>{escape(category)}</category>")
    parts += [extra, "</item>"]
    return "".join(parts)


def rss(*items: str, link: str = "https://news.example/") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Test News</title><link>{link}</link><description>Tests</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def atom_entry(
    title: str = "An Atom story",
    link: str = "https://news.example/atom/1",
    *,
    entry_id: str = "tag:news.example,2026:1",
    updated: str = "2026-03-07T10:00:00+01:00",
    summary: str | None = None,
    title_type: str = "text",
    extra: str = "",
) -> str:
    summary_xml = f'<summary type="html">{escape(summary)}</summary>' if summary is not None else ""
    return (
        f'<entry><title type="{title_type}">{escape(title)}</title><link rel="alternate" href="{link}"/>'
        f"<id>{entry_id}</id><updated>{updated}</updated>{summary_xml}{extra}</entry>"
    )


def atom(*entries: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        '<title>Atom News</title><link href="https://news.example/"/><id>tag:news.example,2026:feed</id>'
        "<updated>2026-03-07T10:00:00Z</updated>" + "".join(entries) + "</feed>"
    ).encode()
