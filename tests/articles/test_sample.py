"""The sample London Daily feed: valid RSS 2.0, sections to choose from, dates moved to the present."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from newsletter.articles import ingest_feeds, write_fresh_sample_feed
from newsletter.articles.clean import text_of
from newsletter.config import FeedConfig
from newsletter.context import AppContext
from newsletter.resources import sample_feed
from tests.articles.helpers import stored_articles

NOW = datetime(2026, 3, 7, 18, 30, tzinfo=UTC)
SECTIONS = {"World", "Politics", "Business", "Energy", "Immigration", "Defence", "UK", "Economy"}


def pub_dates(path: Path) -> list[datetime]:
    root = ElementTree.parse(path).getroot()
    return [parsedate_to_datetime(node.text or "") for node in root.iter("pubDate")]


def test_sample_is_well_formed_rss_with_sections() -> None:
    root = ElementTree.parse(sample_feed()).getroot()
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = root.findall("./channel/item")
    assert 25 <= len(items) <= 60
    sections = Counter(item.findtext("category") for item in items)
    assert set(sections) == SECTIONS and min(sections.values()) >= 3
    for item in items:
        link = item.findtext("link") or ""
        assert link.startswith("https://londondaily.example/") and item.findtext("guid") == link
        assert item.findtext("{http://purl.org/dc/elements/1.1/}creator")


def test_fresh_copy_moves_every_date_by_one_amount(tmp_path: Path) -> None:
    original = pub_dates(sample_feed())
    copy = write_fresh_sample_feed(tmp_path / "fresh" / "london-daily.xml", NOW)
    moved = pub_dates(copy)
    assert max(moved) == NOW - timedelta(hours=1)
    assert NOW - min(moved) <= timedelta(hours=49)
    assert [b - a for a, b in zip(original, moved, strict=True)] == [moved[0] - original[0]] * len(original)


async def test_sample_ingests_with_a_lead_story(context: AppContext, tmp_path: Path) -> None:
    copy = write_fresh_sample_feed(tmp_path / "london-daily.xml", datetime.now(UTC))
    [report] = await ingest_feeds(context, [FeedConfig(url=str(copy), name="London Daily")])
    articles = await stored_articles(context)
    assert report.error is None and report.new == len(articles) == len(pub_dates(copy))
    lead = max(articles, key=lambda article: article.published_at)
    assert lead.title == "UK and Japan sign military agreement amid Russia concerns"
    assert lead.image_url == "https://londondaily.example/images/uk-japan.jpg"
    assert "Fumio Kishida" in text_of(lead.summary)
    assert {article.section for article in articles} == SECTIONS
    assert sum(1 for article in articles if article.image_url) >= 5
