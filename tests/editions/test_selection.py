"""Which articles an edition carries: the window, the sections, the cap, the lead story."""

from __future__ import annotations

from datetime import timedelta

from newsletter.config import NewsletterConfig
from newsletter.context import AppContext
from newsletter.database.models import Article, utcnow
from newsletter.editions.selection import select_articles, window_start
from tests.support.factories import add_articles


async def test_newest_first_capped_with_a_lead_story_that_has_a_picture(context: AppContext) -> None:
    now = utcnow()
    await add_articles(context, 20, now=now, with_image=False)
    async with context.db.session() as session:
        pictured = Article(
            guid="https://londondaily.example/pictured",
            canonical_url="https://londondaily.example/pictured",
            url="https://londondaily.example/pictured",
            title="With a picture",
            summary="",
            section="World",
            image_url="https://londondaily.example/p.jpg",
            published_at=now - timedelta(minutes=30),
            content_hash="p",
        )
        session.add(pictured)
        await session.commit()
        newsletter = NewsletterConfig(id="daily", name="Daily", max_articles=8, lookback_hours=24)
        chosen = await select_articles(session, newsletter, since=now - timedelta(hours=24), until=now)
    assert len(chosen) == 8
    assert chosen[0].title == "With a picture"  # the newest article with a picture leads
    rest = [a.published_at for a in chosen[1:]]
    assert rest == sorted(rest, reverse=True)


async def test_sections_of_the_newsletter_and_of_the_reader(context: AppContext) -> None:
    now = utcnow()
    await add_articles(context, 12, now=now)
    newsletter = NewsletterConfig(id="daily", name="Daily", sections=["World", "Politics", "Business"])
    async with context.db.session() as session:
        everything = await select_articles(session, newsletter, since=now - timedelta(days=1), until=now)
        mine = await select_articles(
            session, newsletter, since=now - timedelta(days=1), until=now, sections=["Business"]
        )
    assert {a.section for a in everything} == {"World", "Politics", "Business"}
    assert {a.section for a in mine} == {"Business"}


async def test_the_first_edition_looks_back_lookback_hours(context: AppContext) -> None:
    now = utcnow()
    newsletter = NewsletterConfig(id="daily", name="Daily", lookback_hours=6)
    async with context.db.session() as session:
        assert await window_start(session, newsletter, now) == now - timedelta(hours=6)
