"""The archive as an Atom feed (RFC 4287): one entry per published edition, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from xml.etree import ElementTree

from newsletter.archive.content import EditionContent
from newsletter.config import NewsletterConfig, Settings
from newsletter.database.models import Edition, utcnow

ATOM = "http://www.w3.org/2005/Atom"


def edition_updated(edition: Edition) -> datetime:
    return edition.finished_at or edition.started_at or edition.created_at


def atom_feed(
    settings: Settings,
    newsletter: NewsletterConfig,
    entries: Sequence[tuple[EditionContent, str]],
    *,
    index_url: str,
    feed_url: str,
) -> bytes:
    """`entries`: each edition's content and its page's absolute URL."""
    ElementTree.register_namespace("", ATOM)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", settings.site.language)
    _text(feed, "id", feed_url)
    _text(feed, "title", f"{newsletter.name} · {settings.site.name}")
    if newsletter.description or settings.site.tagline:
        _text(feed, "subtitle", newsletter.description or settings.site.tagline)
    updated = max((edition_updated(content.edition) for content, _ in entries), default=utcnow())
    _text(feed, "updated", _stamp(updated))
    _link(feed, feed_url, "self", "application/atom+xml")
    _link(feed, index_url, "alternate", "text/html")
    author = ElementTree.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", settings.site.name)
    _text(author, "uri", settings.site.base_url + "/")
    for content, url in entries:
        entry = ElementTree.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", url)
        _text(entry, "title", content.subject)
        _text(entry, "updated", _stamp(edition_updated(content.edition)))
        if content.edition.started_at is not None:
            _text(entry, "published", _stamp(content.edition.started_at))
        _link(entry, url, "alternate", "text/html")
        _text(entry, "summary", content.summary)
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def _text(parent: ElementTree.Element, name: str, value: str) -> None:
    ElementTree.SubElement(parent, f"{{{ATOM}}}{name}").text = value


def _link(parent: ElementTree.Element, href: str, rel: str, media_type: str) -> None:
    ElementTree.SubElement(parent, f"{{{ATOM}}}link", href=href, rel=rel, type=media_type)


def _stamp(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
