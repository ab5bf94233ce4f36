"""Scheduler jobs on a real database: made-up runs once, racing schedulers, sweeping, clean-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update

from newsletter.context import AppContext, open_context
from newsletter.database.models import Delivery, Edition, Event, Subscriber, utcnow
from newsletter.editions.builder import open_edition
from newsletter.scheduling import jobs
from tests.conftest import SettingsFactory
from tests.support.factories import add_articles, add_subscribers


async def editions(context: AppContext) -> list[Edition]:
    async with context.db.session() as session:
        return list((await session.scalars(select(Edition).order_by(Edition.id))).all())


async def test_a_missed_run_is_made_up_once(context: AppContext) -> None:
    await add_articles(context, 3)
    await add_subscribers(context, 4)
    # Scheduled 07:00 London; the service comes back at 09:30 BST (within six hours).
    now = datetime(2026, 7, 11, 8, 30, tzinfo=UTC)
    first = await jobs.catch_up(context, now)
    second = await jobs.catch_up(context, now + timedelta(minutes=10))
    rows = await editions(context)
    assert len(first) == 1 and second == []
    assert len(rows) == 1
    assert rows[0].trigger == "catch-up" and rows[0].edition_date.isoformat() == "2026-07-11"
    assert rows[0].status == "sending" and rows[0].total == 4


async def test_no_make_up_beyond_the_grace_period(context: AppContext) -> None:
    now = datetime(2026, 7, 11, 14, 0, tzinfo=UTC)  # 15:00 BST: eight hours late
    assert await jobs.catch_up(context, now) == []
    assert await editions(context) == []


async def test_two_schedulers_firing_at_once_make_one_edition(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with open_context(settings) as one, open_context(settings) as two:
        await add_articles(one, 5)
        await add_subscribers(one, 50)
        newsletter = settings.newsletter("daily")
        scheduled = utcnow()
        created = await asyncio.gather(
            jobs.scheduled_edition(one, newsletter, scheduled),
            jobs.scheduled_edition(two, newsletter, scheduled),
        )
        rows = await editions(one)
        async with one.db.session() as session:
            deliveries = await session.scalar(select(func.count()).select_from(Delivery))
    assert len([c for c in created if c is not None]) == 1
    assert len(rows) == 1 and rows[0].status == "sending"
    assert deliveries == 50


async def test_sweep_rebuilds_stale_editions(context: AppContext) -> None:
    await add_articles(context, 2)
    await add_subscribers(context, 3)
    newsletter = context.settings.newsletter("daily")
    stale, _ = await open_edition(
        context, newsletter, now=utcnow() - timedelta(minutes=30), trigger="scheduled"
    )
    async with context.db.session() as session:
        await session.execute(
            update(Edition).where(Edition.id == stale.id).values(created_at=utcnow() - timedelta(minutes=30))
        )
        await session.commit()
    await jobs.sweep(context)
    async with context.db.session() as session:
        edition = await session.get(Edition, stale.id)
        assert edition is not None and edition.status == "sending" and edition.total == 3


async def test_never_confirmed_signups_are_forgotten_after_a_week(context: AppContext) -> None:
    old = await add_subscribers(context, 2, status="pending", prefix="old")
    recent = await add_subscribers(context, 2, status="pending", prefix="recent")
    active = await add_subscribers(context, 2, prefix="active")
    week_ago = utcnow() - timedelta(days=8)
    async with context.db.session() as session:
        await session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(old + active))
            .values(created_at=week_ago, updated_at=week_ago, confirmed_at=None)
        )
        session.add_all(
            [Event(kind="signup", subscriber_id=i, ip="203.0.113.9", user_agent="ua") for i in old]
        )
        await session.commit()
    assert await jobs.cleanup_pending(context) == 2
    async with context.db.session() as session:
        left = set((await session.scalars(select(Subscriber.id))).all())
        kept = (
            await session.execute(select(Event.ip, Event.user_agent).where(Event.subscriber_id.in_(old)))
        ).all()
    assert left == set(recent + active)
    assert kept and all(ip is None and agent is None for ip, agent in kept)


async def test_articles_past_their_retention_are_deleted(make_settings: SettingsFactory) -> None:
    """Before, articles were kept for ever."""
    from newsletter.articles import retention
    from newsletter.database.models import Article

    async with open_context(make_settings(articles={"retention_days": 30})) as context:
        await add_articles(context, 5, now=utcnow() - timedelta(days=31))
        recent = await add_articles(context, 3)
        # More than one batch of old ones.
        await add_articles(context, retention.BATCH + 5, now=utcnow() - timedelta(days=400))
        assert await jobs.cleanup_articles(context) == retention.BATCH + 10
        async with context.db.session() as session:
            kept = sorted((await session.scalars(select(Article.id))).all())
        assert kept == sorted(recent)
    async with open_context(make_settings(articles={"retention_days": 0})) as forever:
        await add_articles(forever, 2, now=utcnow() - timedelta(days=4000))
        assert await jobs.cleanup_articles(forever) == 0


async def test_retention_keeps_the_articles_the_web_archive_shows(make_settings: SettingsFactory) -> None:
    """An edition's page is rendered from its articles: those a variant carried stay while an
    archive is on, and go with the rest once every newsletter's archive is off."""
    from newsletter.articles.retention import delete_old_articles
    from newsletter.database.models import Article
    from newsletter.editions.service import start_edition

    later = utcnow() + timedelta(days=40)  # when all of them are past a 30-day retention
    for archive, expected_left in (("public", 4), ("off", 0)):
        newsletters = [{"id": "daily", "name": "Daily", "archive": archive}]
        settings = make_settings(articles={"retention_days": 30}, newsletters=newsletters)
        async with open_context(settings) as context:
            async with context.db.session() as session:
                await session.execute(delete(Article))
                await session.commit()
            carried = await add_articles(context, 4)
            await add_subscribers(context, 1, prefix=f"reader-{archive}")
            await start_edition(context, "daily", new=True)
            # Stored after the edition was built: in no variant.
            await add_articles(context, 3, now=utcnow() - timedelta(hours=1))
            assert await delete_old_articles(context, now=later) == 7 - expected_left
            async with context.db.session() as session:
                left = sorted((await session.scalars(select(Article.id))).all())
            assert left == (sorted(carried) if expected_left else []), archive
