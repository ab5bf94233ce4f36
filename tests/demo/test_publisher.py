"""The demo's publisher: a living London Daily, fetched over real HTTP like any publisher."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import feedparser
import httpx

from newsletter.articles.sample import NEWEST_AGE
from newsletter.demo.publisher import Newsroom, Publisher, sample_images

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def published(entry: feedparser.FeedParserDict) -> datetime:
    return datetime.fromtimestamp(calendar.timegm(entry.published_parsed), UTC)


def parse(feed: str) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(feed)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def test_the_newest_stories_are_published_at_the_start_and_the_rest_held_back() -> None:
    newsroom = Newsroom.from_sample(NOW, held_back=15, base_url="http://127.0.0.1:9")
    entries = parse(newsroom.feed()).entries
    assert len(entries) == len(newsroom.published) and len(newsroom.upcoming) == 15
    assert entries[0].title == "UK and Japan sign military agreement amid Russia concerns"
    newest = max(published(entry) for entry in entries)
    assert newest == NOW - NEWEST_AGE
    held = {story.title for story in newsroom.upcoming}
    assert held.isdisjoint(entry.title for entry in entries)


def test_a_published_story_leads_the_feed_dated_when_it_appeared() -> None:
    newsroom = Newsroom.from_sample(NOW, held_back=2, base_url="http://127.0.0.1:9")
    before = len(newsroom.published)
    later = NOW + timedelta(minutes=3)
    first = newsroom.publish_next(later)
    assert first is not None
    entries = parse(newsroom.feed()).entries
    assert len(entries) == before + 1
    assert entries[0].title == first.title
    assert published(entries[0]) == later
    assert newsroom.publish_next(later) is not None
    assert newsroom.publish_next(later) is None  # the sample has no more


def test_pictures_point_at_the_publisher_and_every_one_is_shipped() -> None:
    newsroom = Newsroom.from_sample(NOW, held_back=1, base_url="http://127.0.0.1:9")
    pictures = [
        content["url"]
        for entry in parse(newsroom.feed()).entries
        for content in entry.get("media_content", [])
    ]
    assert pictures, "the sample feed has pictures"
    for url in pictures:
        assert url.startswith("http://127.0.0.1:9/images/"), url
        assert (sample_images() / url.rsplit("/", 1)[1]).is_file(), url
    assert "londondaily.example/images" not in newsroom.feed()


async def test_served_over_http_with_etags_pictures_and_nothing_else() -> None:
    publisher = await Publisher(held_back=3).start()
    try:
        async with httpx.AsyncClient(base_url=publisher.base_url) as http:
            feed = await http.get("/feed.xml")
            assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/rss+xml")
            etag = feed.headers["etag"]
            unchanged = await http.get("/feed.xml", headers={"If-None-Match": etag})
            assert unchanged.status_code == 304
            story = publisher.publish_next()
            assert story is not None
            changed = await http.get("/feed.xml", headers={"If-None-Match": etag})
            assert changed.status_code == 200 and story.title in parse(changed.text).entries[0].title
            picture = await http.get("/images/uk-japan.jpg")
            assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
            assert picture.content[:3] == b"\xff\xd8\xff"  # a JPEG
            assert (await http.get("/images/../publisher.py")).status_code == 404
            assert (await http.get("/admin")).status_code == 404
    finally:
        await publisher.stop()
