"""Tracked links over the app (real database, real SMTP): what the emails link to, what a click
counts and for whom, what the filter sets apart, and what forged links get."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import delete

from newsletter.database.models import Article
from newsletter.engagement.stats import edition_stats
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.erasure import erase
from tests.conftest import ADMIN_TOKEN
from tests.engagement.helpers import (
    BASE_URL,
    READER,
    TrackedScenario,
    clicks,
    html_of,
    sent,
    story_links,
    web,
)


async def test_aggregate_links_count_clicks_per_article_and_keep_nobody(scenario: TrackedScenario) -> None:
    async with sent(scenario, "aggregate") as s, web(s.context) as client:
        first, second = story_links(s)
        assert first == second  # not personal: the variant is rendered once for everyone
        assert all(re.fullmatch(rf"{BASE_URL}/r/\d+-\d+-[a-z2-7]{{16}}", link) for link in first)
        response = await client.get(urlsplit(first[0]).path, headers=READER)
        assert response.status_code == 302
        assert response.headers["location"].startswith("https://londondaily.example/story/")
        assert response.headers["location"].endswith("utm_source=nl")
        assert response.headers["cache-control"] == "no-store"
        [click] = await clicks(s.context)
        assert (click.kind, click.filtered, click.delivery_id, click.subscriber_id) == (
            "click",
            None,
            None,
            None,
        )
        stats = await edition_stats(s.context, s.edition.id)
        assert (stats.clicks, stats.delivered, stats.readers_clicked) == (1, 2, None)
        assert stats.click_rate == 0.5 and stats.articles[0].clicks == 1
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        counted = 'newsletter_clicks_total{counted="yes",kind="click",newsletter="daily"}'
        assert counted in metrics.text


async def test_per_reader_links_name_the_delivery_and_erasure_anonymises(scenario: TrackedScenario) -> None:
    async with sent(scenario, "per_reader") as s, web(s.context) as client:
        first, second = story_links(s)
        assert first != second and len(first) == len(second)
        for links in (first, second):
            await client.get(urlsplit(links[0]).path, headers=READER)
            await client.get(urlsplit(links[1]).path, headers=READER)
        pixel = re.search(r'<img src="([^"]+/r/open/[^"]+\.gif)"', html_of(s.handler.messages()[0].message()))
        assert pixel is not None
        opened = await client.get(urlsplit(pixel.group(1)).path, headers=READER)
        assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
        stats = await edition_stats(s.context, s.edition.id)
        assert (stats.clicks, stats.readers_clicked, stats.opened_at_least) == (4, 2, 1)
        assert stats.click_rate == 1.0 and {a.readers for a in stats.articles} == {2}
        rows = await clicks(s.context)
        assert len({row.subscriber_id for row in rows}) == 2 and None not in {row.delivery_id for row in rows}

        async with s.context.db.session() as session:
            erased = await erase(
                session, address=normalise_address("reader1@readers.example"), actor=Actor("test")
            )
            await session.commit()
        rows = await clicks(s.context)
        assert erased not in {row.subscriber_id for row in rows}
        assert len(rows) == 5  # the counts stay
        assert (await edition_stats(s.context, s.edition.id)).clicks == 4


async def test_scanners_bots_heads_prefetches_and_repeats_are_counted_apart(
    scenario: TrackedScenario,
) -> None:
    async with sent(scenario, "aggregate", tracking={"scanner_seconds": 0, "max_clicks_per_minute": 2}) as s:
        [links, _] = story_links(s)
        paths = [urlsplit(link).path for link in links]
        async with web(s.context) as client:
            assert (await client.head(paths[0], headers=READER)).status_code == 302
            await client.get(paths[0], headers={"User-Agent": "curl/8.5.0"})
            await client.get(paths[0], headers={**READER, "Sec-Purpose": "prefetch"})
            await client.get(paths[0], headers={"User-Agent": "Mimecast URL Protect"})
            for _ in range(50):  # one reader, one link, again and again: one click
                await client.get(paths[1], headers=READER)
            await client.get(paths[2], headers=READER)
            await client.get(paths[3], headers=READER)  # a third link in the minute: over the limit
        stats = await edition_stats(s.context, s.edition.id)
        assert stats.clicks == 2
        assert stats.filtered == {"bot": 2, "head": 1, "prefetch": 1, "rate": 1, "repeat": 49}
        assert sum(stats.timing.values()) == 56


async def test_scanner_window_sets_early_clicks_apart(scenario: TrackedScenario) -> None:
    async with sent(scenario, "aggregate", tracking={"scanner_seconds": 3600}) as s, web(s.context) as client:
        [links, _] = story_links(s)
        assert (await client.get(urlsplit(links[0]).path, headers=READER)).status_code == 302
        stats = await edition_stats(s.context, s.edition.id)
        assert (stats.clicks, stats.filtered, stats.timing) == (0, {"scanner": 1}, {"0": 1})


async def test_forged_foreign_and_gone_links(scenario: TrackedScenario) -> None:
    async with sent(scenario, "aggregate") as s, web(s.context) as client:
        [links, _] = story_links(s)
        path = urlsplit(links[0]).path
        token = path.rsplit("/", 1)[1]
        edition, article, mac = token.split("-")
        for bad in (
            f"/r/{edition}-{article}-{'a' * 16}",  # forged
            f"/r/{edition}-{int(article) + 1}-{mac}",  # another article under this signature
            f"/r/{token[:-1]}",  # truncated
            "/r/https:%2F%2Fevil.example",  # a free URL: never followed
            f"/r/{int(edition) + 100}-{article}-{mac}",
        ):
            response = await client.get(bad, headers=READER)
            assert response.status_code == 404, bad
        assert await clicks(s.context) == []

        async with s.context.db.session() as session:
            await session.execute(delete(Article).where(Article.id == int(article)))
            await session.commit()
        async with web(s.context) as fresh:  # a new process: nothing cached
            gone = await fresh.get(path, headers={**READER, "Accept": "text/html"})
        assert gone.status_code == 410
        assert f'href="{BASE_URL}/archive/daily/{s.edition.edition_date}"' in gone.text


async def test_tracking_off_links_go_straight_to_the_articles(scenario: TrackedScenario) -> None:
    async with sent(scenario, "off") as s:
        [links, _] = story_links(s)
        assert all(link.startswith("https://londondaily.example/story/") for link in links)
        assert "/r/open/" not in html_of(s.handler.messages()[0].message())


async def test_stats_over_the_api(scenario: TrackedScenario) -> None:
    async with sent(scenario, "aggregate") as s, web(s.context) as client:
        [links, _] = story_links(s)
        await client.get(urlsplit(links[0]).path, headers=READER)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        response = await client.get(f"/api/editions/{s.edition.id}/stats", headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert (body["clicks"], body["delivered"], body["tracking"]) == (1, 2, "aggregate")
        assert body["articles"][0]["clicks"] == 1 and body["articles"][0]["title"].startswith("Story")
        assert (await client.get(f"/api/editions/{s.edition.id}/stats")).status_code == 401
        assert (await client.get("/api/editions/999999/stats", headers=headers)).status_code == 404
