"""Operators' curation in the selection: hidden articles are left out, a pinned one leads the
next edition of each newsletter once, and everything else is selected as before."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select, update

from newsletter.config import NewsletterConfig
from newsletter.context import AppContext, open_context
from newsletter.database.models import Article, EditionVariant, utcnow
from newsletter.editions.selection import select_articles
from newsletter.editions.service import start_edition
from tests.conftest import SettingsFactory
from tests.support.factories import add_articles, add_subscribers

DAILY = NewsletterConfig(id="daily", name="Daily", max_articles=4, lookback_hours=24)


async def _article(
    context: AppContext, name: str, published_at: datetime, *, section: str = "World", image: bool = False
) -> int:
    async with context.db.session() as session:
        article = Article(
            canonical_url=f"https://paper.example/{name}",
            url=f"https://paper.example/{name}",
            title=name,
            summary="",
            section=section,
            image_url="https://paper.example/p.jpg" if image else None,
            published_at=published_at,
            content_hash=name,
        )
        session.add(article)
        await session.commit()
        return article.id


async def _mark(context: AppContext, article_id: int, **values: datetime | None) -> None:
    async with context.db.session() as session:
        await session.execute(update(Article).where(Article.id == article_id).values(**values))
        await session.commit()


async def _selected(
    context: AppContext,
    newsletter: NewsletterConfig,
    since: datetime,
    until: datetime,
    sections: tuple[str, ...] = (),
) -> list[int]:
    async with context.db.session() as session:
        chosen = await select_articles(session, newsletter, since=since, until=until, sections=sections)
    return [a.id for a in chosen]


async def _variants(context: AppContext, edition_id: int) -> list[list[int]]:
    async with context.db.session() as session:
        rows = await session.scalars(
            select(EditionVariant.article_ids).where(EditionVariant.edition_id == edition_id)
        )
        return [json.loads(ids) for ids in rows.all()]


async def test_without_hidden_or_pinned_articles_the_selection_is_unchanged(context: AppContext) -> None:
    now = utcnow()
    ids = [await _article(context, f"n{n}", now - timedelta(minutes=n + 1), image=n == 2) for n in range(6)]
    selected = await _selected(context, DAILY, now - timedelta(hours=24), now)
    assert selected == [ids[2], ids[0], ids[1], ids[3]]  # newest four, the pictured one first


async def test_a_hidden_article_is_left_out(context: AppContext) -> None:
    now = utcnow()
    ids = [await _article(context, f"n{n}", now - timedelta(minutes=n + 1)) for n in range(5)]
    await _mark(context, ids[0], hidden_at=now, pinned_at=now - timedelta(minutes=1))
    selected = await _selected(context, DAILY, now - timedelta(hours=24), now + timedelta(seconds=1))
    assert selected == ids[1:5]  # hidden wins over pinned, and the next article fills the place


async def test_a_pinned_older_article_leads_within_the_cap(context: AppContext) -> None:
    now = utcnow()
    ids = [await _article(context, f"n{n}", now - timedelta(minutes=n + 1), image=n == 1) for n in range(6)]
    old = await _article(context, "old", now - timedelta(days=30))
    await _mark(context, old, pinned_at=now - timedelta(minutes=5))
    selected = await _selected(context, DAILY, now - timedelta(hours=24), now)
    assert selected == [old, ids[1], ids[0], ids[2]]  # then the usual order, the pictured one first
    # A pin already in the window is not carried twice.
    await _mark(context, ids[3], pinned_at=now - timedelta(minutes=1))
    assert await _selected(context, DAILY, now - timedelta(hours=24), now) == [ids[3], ids[1], ids[0], ids[2]]


async def test_the_latest_pin_counts_and_only_within_the_window(context: AppContext) -> None:
    now = utcnow()
    first, second, late = [await _article(context, name, now - timedelta(days=3)) for name in "abc"]
    await _mark(context, first, pinned_at=now - timedelta(hours=2))
    await _mark(context, second, pinned_at=now - timedelta(hours=1))
    await _mark(context, late, pinned_at=now + timedelta(minutes=1))  # after this edition's cut-off
    since = now - timedelta(hours=24)
    assert await _selected(context, DAILY, since, now) == [second]
    # The next edition's window starts at this one's cut-off: only the later pin is in it.
    assert await _selected(context, DAILY, now, now + timedelta(hours=24)) == [late]
    # A pin made before the window started (another edition used it, or it expired) counts no more.
    assert await _selected(context, DAILY, now - timedelta(minutes=30), now) == []


async def test_a_pin_belongs_to_the_newsletters_and_readers_of_its_section(context: AppContext) -> None:
    now = utcnow()
    world = await _article(context, "world", now - timedelta(minutes=1))
    business = await _article(context, "business", now - timedelta(days=2), section="Business")
    await _mark(context, business, pinned_at=now - timedelta(minutes=1))
    since = now - timedelta(hours=24)
    sectioned = NewsletterConfig(id="w", name="World only", sections=["World"])
    assert await _selected(context, sectioned, since, now) == [world]
    everything = NewsletterConfig(id="all", name="All", sections=["World", "Business"])
    assert await _selected(context, everything, since, now) == [business, world]
    assert await _selected(context, everything, since, now, sections=("World",)) == [world]


async def test_editions_built_carry_the_pin_once_per_newsletter_and_never_hidden_articles(
    make_settings: SettingsFactory,
) -> None:
    newsletters = [{"id": "daily", "name": "Daily"}, {"id": "evening", "name": "Evening"}]
    async with open_context(make_settings(newsletters=newsletters)) as context:
        ids = await add_articles(context, 5)
        old = await _article(context, "old", utcnow() - timedelta(days=5))
        await add_subscribers(context, 2, newsletter="daily")
        await add_subscribers(context, 2, newsletter="evening", prefix="evening")
        await _mark(context, old, pinned_at=utcnow())
        await _mark(context, ids[1], hidden_at=utcnow())
        daily = await start_edition(context, "daily")
        (carried,) = await _variants(context, daily.id)
        assert carried[0] == old and ids[1] not in carried and len(carried) == 5
        # Hidden after the build: the edition built keeps what it had.
        await _mark(context, ids[2], hidden_at=utcnow())
        assert await _variants(context, daily.id) == [carried]
        # The other newsletter's next edition is led by the pin too: it is used once per newsletter.
        evening = await start_edition(context, "evening")
        (theirs,) = await _variants(context, evening.id)
        assert theirs[0] == old and ids[2] not in theirs
        await _article(context, "fresh", utcnow())
        again = await start_edition(context, "daily", new=True)
        (next_one,) = await _variants(context, again.id)
        assert old not in next_one
        # The archive selects an edition's articles again from its window: the same lead.
        async with context.db.session() as session:
            newsletter = context.settings.newsletter("daily")
            shown = await select_articles(session, newsletter, since=daily.since_at, until=daily.cutoff_at)
        assert shown[0].id == old
