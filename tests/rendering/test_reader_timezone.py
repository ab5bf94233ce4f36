"""Article times in the digest name their timezone, the readers' own when known; every "Read
more" link is named for its story, so a screen reader's list of links tells them apart."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from newsletter.config import NewsletterConfig
from newsletter.rendering import DigestRenderer
from newsletter.rendering.content import time_label
from tests.rendering.articles import EDITION_DATE, HOSTILE_TITLE, article, stories
from tests.rendering.conftest import RenderSettings

TIME = re.compile(r"\b(\d\d:\d\d) ([A-Z]{3,4})\b")


def shown_times(renderer: DigestRenderer, newsletter: NewsletterConfig, timezone: str | None) -> list[str]:
    rendered = renderer.render_digest(newsletter, EDITION_DATE, stories(), timezone=timezone)
    body = lxml.html.document_fromstring(rendered.html).body
    html_times = [TIME.search(b.text_content()) for b in body.find_class("byline")]
    text_times = TIME.findall(rendered.text)
    assert [m.groups() for m in html_times if m] == text_times, "the HTML and text parts differ"
    return [" ".join(found) for found in text_times]


def test_times_are_in_the_readers_timezone_with_its_abbreviation(
    renderer: DigestRenderer, daily: NewsletterConfig
) -> None:
    london = shown_times(renderer, daily, "Europe/London")
    new_york = shown_times(renderer, daily, "America/New_York")
    assert len(london) == len(stories())
    # 7 March 2026: London is on GMT, New York (until the 8th) on EST, five hours behind.
    assert all(label.endswith(" GMT") for label in london)
    assert all(label.endswith(" EST") for label in new_york)
    for there, here in zip(new_york, london, strict=True):
        hours = int(here[:2]) - int(there[:2])
        assert hours % 24 == 5 and there[2:5] == here[2:5]


@pytest.mark.parametrize("timezone", [None, "Mars/Olympus_Mons", ""])
def test_an_unknown_readers_timezone_shows_the_newsletters(
    render_settings: RenderSettings, timezone: str | None
) -> None:
    settings = render_settings(newsletters=[{"id": "daily", "name": "Daily", "timezone": "America/New_York"}])
    times = shown_times(DigestRenderer(settings), settings.newsletters[0], timezone)
    assert times and all(label.endswith(" EST") for label in times)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/London", "14:05 GMT"),
        ("America/New_York", "09:05 EST"),
        ("Europe/Paris", "15:05 CET"),
        # tzdata has no letters for these: the offset stands in.
        ("Asia/Dubai", "18:05 UTC+4"),
        ("America/Sao_Paulo", "11:05 UTC-3"),
        ("Asia/Kathmandu", "19:50 UTC+5:45"),
        ("UTC", "14:05 UTC"),
    ],
)
def test_time_labels(zone: str, expected: str) -> None:
    assert time_label(datetime(2026, 3, 7, 14, 5, tzinfo=UTC), ZoneInfo(zone)) == expected


def test_every_read_more_link_is_named_for_its_story(
    renderer: DigestRenderer, daily: NewsletterConfig
) -> None:
    articles = [*stories(), article(HOSTILE_TITLE, index=50, section="Politics")]
    rendered = renderer.render_digest(daily, EDITION_DATE, articles)
    body = lxml.html.document_fromstring(rendered.html).body
    links = [a for a in body.iter("a") if a.text_content().startswith("Read more")]
    assert len(links) == len(articles)
    names = [a.get("aria-label") for a in links]
    assert len(set(names)) == len(names)
    titles = {a.title for a in articles}
    for link, name in zip(links, names, strict=True):
        # The visible words start the name (WCAG 2.5.3, label in name), the headline follows.
        assert name.startswith("Read more: ") and name.removeprefix("Read more: ") in titles
        headline = body.xpath(f'//h2/a[@href="{link.get("href")}"] | //h3/a[@href="{link.get("href")}"]')
        assert [h.text_content() for h in headline] == [name.removeprefix("Read more: ")]
    assert "<script>" not in rendered.html.split("<body", 1)[1]
