"""Feed documents in every format to ArticleInputs: fields, guids, images, sections, dates, skips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsletter.articles.entries import EntryBatch, FeedSource, articles_from_feed, global_guid
from newsletter.articles.inputs import ArticleRules
from newsletter.articles.parse import parse_feed
from tests.articles.feeds import atom, atom_entry, rss, rss_item

NOW = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
FEED = "https://news.example/feed.xml"
RULES = ArticleRules(known_sections=("World", "Politics"), max_title_chars=80, max_summary_chars=200)

RSS_091 = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Old News</title><link>https://old.example/</link>
<description>x</description><language>en</language>
<item><title>Caf\xe9 opens &amp; closes</title><link>https://old.example/cafe</link>
<description>A caf\xe9 story.</description></item>
<item><title>Second</title><link>https://old.example/2</link></item>
</channel></rss>"""

RSS_10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://rdf.example/"><title>RDF News</title><link>https://rdf.example/</link>
<description>x</description></channel>
<item rdf:about="https://rdf.example/1"><title>First RDF</title><link>https://rdf.example/1</link>
<dc:date>2026-03-07T09:00:00Z</dc:date><dc:subject>politics</dc:subject>
<dc:creator>Ann Writer</dc:creator></item>
<item rdf:about="https://rdf.example/2"><title>Second RDF</title><link>https://rdf.example/2</link></item>
</rdf:RDF>"""

ATOM_03 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Atom 0.3 News</title>
<link rel="alternate" type="text/html" href="https://a03.example/"/><modified>2026-03-07T10:00:00Z</modified>
<entry><title>Old Atom one</title><link rel="alternate" type="text/html" href="https://a03.example/1"/>
<id>tag:a03.example,2026:1</id><issued>2026-03-07T08:00:00Z</issued><modified>2026-03-07T08:00:00Z</modified>
<summary>First summary</summary></entry>
<entry><title>Old Atom two</title><link rel="alternate" type="text/html" href="https://a03.example/2"/>
<id>tag:a03.example,2026:2</id><modified>2026-03-07T09:00:00Z</modified></entry>
</feed>"""


def batch_of(data: bytes, *, section: str | None = None, location: str | None = FEED) -> EntryBatch:
    parsed = parse_feed(data, location=location)
    return articles_from_feed(parsed, FeedSource(FEED, location, section), RULES, NOW)


@pytest.mark.parametrize(
    ("document", "first_title", "first_url"),
    [
        (RSS_091, "Caf\u00e9 opens & closes", "https://old.example/cafe"),
        (RSS_10, "First RDF", "https://rdf.example/1"),
        (rss(rss_item("RSS two", "https://news.example/2"), rss_item()), "RSS two", "https://news.example/2"),
        (ATOM_03, "Old Atom one", "https://a03.example/1"),
        (atom(atom_entry(), atom_entry("Two", "https://news.example/atom/2", entry_id="tag:x,2026:2")),
         "An Atom story", "https://news.example/atom/1"),
    ],
    ids=["rss091", "rss10", "rss20", "atom03", "atom10"],
)  # fmt: skip
def test_every_format_gives_articles(document: bytes, first_title: str, first_url: str) -> None:
    batch = batch_of(document)
    assert len(batch.articles) == 2
    assert not batch.skipped
    first = batch.articles[0]
    assert (first.title, first.url) == (first_title, first_url)
    for article in batch.articles:
        assert article.published_at is None or article.published_at.tzinfo == UTC


def test_rss_fields() -> None:
    extra = (
        '<media:content url="https://img.example/small.jpg" medium="image" width="140"/>'
        '<media:content url="https://img.example/large.jpg" medium="image" width="1200"/>'
        '<media:content url="https://img.example/clip.mp4" type="video/mp4" width="4000"/>'
        "<dc:creator>Jane Reporter</dc:creator>"
    )
    item = rss_item(
        "Headline &amp; more",
        "/world/story?utm_source=rss",
        guid="12345",
        description="<p>Body with a <a href='related'>link</a></p>",
        pub_date="Sat, 07 Mar 2026 10:00:00 +0100",
        category="world",
        extra=extra,
    )
    [article] = batch_of(rss(item)).articles
    # feedparser marks an entity-bearing RSS title as HTML; its one HTML decoding gives "&".
    assert article.title == "Headline & more"
    assert article.url == "https://news.example/world/story?utm_source=rss"
    assert article.guid == f"{FEED}#12345"
    assert article.section == "World"
    assert article.author == "Jane Reporter"
    assert article.image_url == "https://img.example/large.jpg"
    assert article.published_at == datetime(2026, 3, 7, 9, 0, tzinfo=UTC)
    assert article.feed_url == FEED
    assert article.summary == (
        'Body with a <a href="https://news.example/world/related" rel="noopener noreferrer">link</a>'
    )


def test_atom_fields() -> None:
    entry = atom_entry(
        "Markup <em>title</em>",
        "https://news.example/atom/7",
        title_type="html",
        summary='<img src="/pics/seven.png"> Seen <a href="../up">here</a>',
        extra="<author><name>Sam Atom</name></author><category term='politics' label='Politics'/>",
    )
    [article] = batch_of(atom(entry)).articles
    assert article.title == "Markup title"
    assert article.guid == "tag:news.example,2026:1"
    assert article.author == "Sam Atom"
    assert article.section == "Politics"
    assert article.image_url == "https://news.example/pics/seven.png"
    assert 'href="https://news.example/up"' in article.summary


def test_escaped_markup_in_titles_decoded_once() -> None:
    items = rss(
        rss_item("A &lt;script&gt;alert(1)&lt;/script&gt; headline", "https://news.example/1"),
        rss_item("Plain & simple", "https://news.example/2"),
        rss_item("Curly &#8217; quote", "https://news.example/3"),
    )
    titles = [article.title for article in batch_of(items).articles]
    # The first arrives as text "&lt;script&gt;…" in HTML: shown as the characters "<script>", never run.
    assert titles == ["A <script>alert(1)</script> headline", "Plain & simple", "Curly \u2019 quote"]


def test_image_from_thumbnail_or_enclosure() -> None:
    thumb = rss_item(
        "T", "https://news.example/t", extra='<media:thumbnail url="https://img.example/t.jpg"/>'
    )
    enclosure = rss_item(
        "E",
        "https://news.example/e",
        extra='<enclosure url="https://img.example/e.png" type="image/png" length="1"/>',
    )
    audio = rss_item(
        "A",
        "https://news.example/a",
        extra='<enclosure url="https://img.example/a.mp3" type="audio/mpeg" length="1"/>',
    )
    images = [article.image_url for article in batch_of(rss(thumb, enclosure, audio)).articles]
    assert images == ["https://img.example/t.jpg", "https://img.example/e.png", None]


def test_feed_section_beats_categories_and_unknown_categories_are_kept() -> None:
    items = rss(rss_item("One", "https://news.example/1", category="  Local   News "))
    assert batch_of(items).articles[0].section == "Local News"
    assert batch_of(items, section="World").articles[0].section == "World"


def test_dates_missing_or_in_the_future_are_unknown() -> None:
    items = rss(
        rss_item("No date", "https://news.example/1", pub_date=None),
        rss_item("Future", "https://news.example/2", pub_date="Fri, 01 Jan 2100 00:00:00 GMT"),
        rss_item("Garbage", "https://news.example/3", pub_date="yesterday-ish"),
    )
    assert [article.published_at for article in batch_of(items).articles] == [None, None, None]


def test_entries_without_title_or_link_are_skipped_with_reasons() -> None:
    items = rss(
        rss_item(None, "https://news.example/1"),
        rss_item("   ", "https://news.example/2"),
        rss_item("No link", None),
        rss_item("Bad link", "javascript:alert(1)"),
        rss_item("Fine", "https://news.example/ok"),
    )
    batch = batch_of(items)
    assert [article.title for article in batch.articles] == ["Fine"]
    assert batch.skipped == {"no title": 2, "no link": 1, "link not an absolute http(s) URL": 1}


def test_relative_links_in_a_file_feed_use_the_channel_link() -> None:
    items = rss(rss_item("Rel", "/rel/1"), link="https://channel.example/home/")
    [article] = batch_of(items, location=None).articles
    assert article.url == "https://channel.example/rel/1"


def test_titles_and_summaries_cut_to_the_configured_length() -> None:
    item = rss_item("word " * 100, "https://news.example/long", description="<b>" + "text " * 200 + "</b>")
    [article] = batch_of(rss(item)).articles
    assert len(article.title) <= 80 and article.title.endswith("\u2026")
    assert article.summary.endswith("\u2026</b>")


@pytest.mark.parametrize(
    ("entry_id", "expected"),
    [
        ("https://news.example/p/1", "https://news.example/p/1"),
        ("tag:news.example,2026:1", "tag:news.example,2026:1"),
        ("urn:uuid:0d0f", "urn:uuid:0d0f"),
        ("12345", f"{FEED}#12345"),
        ("", None),
        (None, None),
    ],
)
def test_global_guid(entry_id: str | None, expected: str | None) -> None:
    assert global_guid(entry_id, FEED) == expected


def test_overlong_guid_is_hashed() -> None:
    guid = global_guid("x" * 5000, FEED)
    assert guid is not None and guid.startswith("sha256:") and len(guid) == 71


@pytest.mark.parametrize(
    ("title", "title_type", "expected"),
    [
        ("Atom <b>bold</b> story", "html", "Atom bold story"),  # HTML: its text
        ("Atom &lt;b&gt; story", "html", "Atom <b> story"),  # escaped in the HTML: the characters
        ("Atom <b>bold</b> &amp; story", "text", "Atom <b>bold</b> &amp; story"),  # text: as it is
    ],
)
def test_atom_titles_are_reduced_to_text_exactly_once(title: str, title_type: str, expected: str) -> None:
    [article] = batch_of(atom(atom_entry(title, title_type=title_type))).articles
    assert article.title == expected


def test_xhtml_titles_and_text_names_in_atom() -> None:
    entry = atom_entry(
        "placeholder",
        extra=(
            "<author><name>Jane &amp;amp; Co &lt;i&gt;x&lt;/i&gt;</name></author>"
            "<category term='politics' label='World &amp;amp; UK'/>"
        ),
    ).replace(
        '<title type="text">placeholder</title>',
        '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        "X <b>bold</b> &amp;amp; y</div></title>",
    )
    [article] = batch_of(atom(entry)).articles
    assert article.title == "X bold &amp; y"
    # Atom's person names and category labels are text: kept as written, never HTML-decoded.
    assert article.author == "Jane &amp; Co <i>x</i>"
    assert article.section == "World &amp; UK"


def test_rss_names_and_categories_are_read_as_html_once() -> None:
    item = rss_item(
        "Tom &amp;amp; Jerry &lt;b&gt;win&lt;/b&gt;",
        "https://news.example/1",
        category="World &amp;amp; UK",
        extra="<dc:creator>Jo &amp;amp; Kim &lt;i&gt;Staff&lt;/i&gt;</dc:creator>",
    )
    [article] = batch_of(rss(item)).articles
    # rss_item escapes title and category once more for the XML; the author is written as is.
    assert article.title == "Tom &amp; Jerry <b>win</b>"
    assert article.author == "Jo & Kim Staff"
    assert article.section == "World &amp; UK"
