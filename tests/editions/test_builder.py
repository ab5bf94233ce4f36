"""Editions: one per newsletter and day, variants rendered once, deliveries enqueued in the database."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from newsletter.context import AppContext, open_context
from newsletter.database.models import Delivery, Edition, EditionVariant, Subscriber, utcnow
from newsletter.editions.builder import build_edition, open_edition
from newsletter.editions.service import start_edition
from newsletter.rendering import DigestRenderer
from tests.conftest import SettingsFactory
from tests.support.factories import add_articles, add_subscribers


async def count(context: AppContext, model: type, **where: object) -> int:
    async with context.db.session() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(await session.scalar(query) or 0)


async def test_one_edition_per_newsletter_and_day(context: AppContext) -> None:
    newsletter = context.settings.newsletter("daily")
    now = utcnow()
    first, created = await open_edition(context, newsletter, now=now, trigger="manual")
    again, created_again = await open_edition(
        context, newsletter, now=now + timedelta(minutes=5), trigger="scheduled"
    )
    extra, created_extra = await open_edition(context, newsletter, now=now, trigger="manual", new=True)
    assert created and not created_again and created_extra
    assert again.id == first.id
    assert (extra.sequence, extra.edition_date) == (1, first.edition_date)


async def test_racing_openers_create_one_edition(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with open_context(settings) as one, open_context(settings) as two:
        newsletter = settings.newsletter("daily")
        now = utcnow()
        results = await asyncio.gather(
            *(open_edition(ctx, newsletter, now=now, trigger="scheduled") for ctx in (one, two, one, two))
        )
        assert len({edition.id for edition, _ in results}) == 1
        assert [created for _, created in results].count(True) == 1
        assert await count(one, Edition) == 1


async def test_each_distinct_choice_of_sections_is_rendered_once(context: AppContext) -> None:
    await add_articles(context, 10)
    await add_subscribers(context, 30, sections=["World"], prefix="world")
    await add_subscribers(context, 20, sections=["Business", "Energy"], prefix="biz")
    await add_subscribers(context, 10, prefix="all")
    edition = await start_edition(context, "daily")
    assert edition.total == 60 and edition.status == "sending"
    async with context.db.session() as session:
        variants = (
            await session.scalars(select(EditionVariant).where(EditionVariant.edition_id == edition.id))
        ).all()
        per_variant = Counter(
            (
                await session.execute(select(Delivery.variant_id).where(Delivery.edition_id == edition.id))
            ).scalars()
        )
        world = next(v for v in variants if per_variant[v.id] == 30)
        from newsletter.database.models import Article

        sections = set(
            (
                await session.scalars(
                    select(Article.section).where(Article.id.in_(json.loads(world.article_ids)))
                )
            ).all()
        )
    assert len(variants) == 3
    assert sorted(per_variant.values()) == [10, 20, 30]
    assert sections == {"World"}
    assert "<html" in world.html.lower() and world.text


@pytest.mark.parametrize(
    ("send_when_empty", "expected"), [(False, {"skipped": 5, "queued": 4}), (True, {"queued": 9})]
)
async def test_a_reader_with_nothing_new_is_skipped_unless_configured(
    make_settings: SettingsFactory, send_when_empty: bool, expected: dict[str, int]
) -> None:
    newsletters = [{"id": "daily", "name": "The Daily Briefing", "send_when_empty": send_when_empty}]
    async with open_context(make_settings(newsletters=newsletters)) as context:
        await add_articles(context, 4, sections=["World"])
        await add_subscribers(context, 5, sections=["Sport"], prefix="sport")
        await add_subscribers(context, 4, sections=["World"], prefix="world")
        edition = await start_edition(context, "daily")
        async with context.db.session() as session:
            statuses = Counter(
                (
                    await session.scalars(select(Delivery.status).where(Delivery.edition_id == edition.id))
                ).all()
            )
            skipped = (
                await session.scalars(select(Delivery.last_reply).where(Delivery.status == "skipped"))
            ).all()
    assert dict(statuses) == expected
    assert all("no new articles" in (reply or "") for reply in skipped)


async def test_building_twice_adds_nothing(context: AppContext) -> None:
    await add_articles(context, 5)
    await add_subscribers(context, 25)
    newsletter = context.settings.newsletter("daily")
    edition, _ = await open_edition(context, newsletter, now=utcnow(), trigger="manual")
    renderer = DigestRenderer(context.settings)
    await build_edition(context, edition.id, renderer)
    async with context.db.session() as session:
        row = await session.get(Edition, edition.id)
        assert row is not None
        row.status = "building"  # as if the builder had died before marking it sending
        await session.commit()
    rebuilt = await build_edition(context, edition.id, renderer)
    assert rebuilt.total == 25
    assert await count(context, Delivery, edition_id=edition.id) == 25
    assert await count(context, EditionVariant, edition_id=edition.id) == 1


async def test_inactive_readers_are_not_enqueued(context: AppContext) -> None:
    await add_articles(context, 3)
    await add_subscribers(context, 4)
    for status in ("pending", "unsubscribed", "bounced"):
        await add_subscribers(context, 2, status=status, prefix=status)
    edition = await start_edition(context, "daily")
    assert edition.total == 4


async def test_the_next_edition_only_carries_newer_articles(context: AppContext) -> None:
    await add_articles(context, 4)
    await add_subscribers(context, 2)
    first = await start_edition(context, "daily")
    later = utcnow() + timedelta(minutes=30)
    await add_articles(context, 2, now=later + timedelta(minutes=20))
    second = await start_edition(context, "daily", new=True, now=later + timedelta(hours=1))
    async with context.db.session() as session:
        ids = [
            set(json.loads(v.article_ids))
            for v in (await session.scalars(select(EditionVariant).order_by(EditionVariant.edition_id))).all()
        ]
    assert first.id != second.id
    assert len(ids) == 2 and len(ids[0]) == 4 and len(ids[1]) == 2
    assert not ids[0] & ids[1]


async def test_local_time_delivery_waits_for_each_readers_morning(make_settings: SettingsFactory) -> None:
    newsletters = [
        {
            "id": "daily",
            "name": "Daily",
            "schedule": "0 7 * * *",
            "timezone": "Europe/London",
            "deliver_at_local_time": True,
        }
    ]
    settings = make_settings(newsletters=newsletters)
    # 07:00 in London on a winter day is 07:00 UTC.
    built_at = datetime(2026, 1, 15, 7, 0, 5, tzinfo=UTC)
    async with open_context(settings) as context:
        await add_articles(context, 3, now=built_at)
        await add_subscribers(context, 2, timezone="Europe/London", prefix="london")
        await add_subscribers(context, 2, timezone="America/New_York", prefix="newyork")
        await add_subscribers(context, 2, timezone="Asia/Tokyo", prefix="tokyo")
        await add_subscribers(context, 1, prefix="unknown")
        edition = await start_edition(context, "daily", now=built_at)
        async with context.db.session() as session:
            due = {
                (email or "").split("@")[0].rstrip("0123456789"): when
                for email, when in (
                    await session.execute(
                        select(Subscriber.email, Delivery.next_attempt_at)
                        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                        .where(Delivery.edition_id == edition.id)
                    )
                ).all()
            }
    assert edition.total == 7
    assert due["london"] >= built_at and due["london"] - built_at < timedelta(minutes=5)
    assert due["unknown"] == due["london"]
    assert due["newyork"] == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 07:00 EST
    assert due["tokyo"] == datetime(2026, 1, 15, 22, 0, tzinfo=UTC)  # 07:00 JST on the 16th


async def test_each_timezone_gets_its_times_in_a_variant_of_its_own(context: AppContext) -> None:
    """Rendered once per choice of sections and timezone, never per reader; readers with no
    timezone, or the newsletter's own, share one."""
    await add_articles(context, 3, now=datetime(2026, 1, 15, 6, 0, tzinfo=UTC))
    await add_subscribers(context, 3, timezone="America/New_York", prefix="newyork")
    await add_subscribers(context, 2, timezone="Europe/London", prefix="london")
    await add_subscribers(context, 2, prefix="unknown")
    await add_subscribers(context, 1, timezone="America/Toronto", prefix="toronto")  # EST too
    edition = await start_edition(context, "daily", now=datetime(2026, 1, 15, 7, 0, tzinfo=UTC))
    async with context.db.session() as session:
        rows = (
            await session.execute(
                select(Subscriber.email, EditionVariant.text)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .join(EditionVariant, EditionVariant.id == Delivery.variant_id)
                .where(Delivery.edition_id == edition.id)
            )
        ).all()
    variants = await count(context, EditionVariant, edition_id=edition.id)
    zones = {(email or "").split("@")[0].rstrip("0123456789"): " EST" in text for email, text in rows}
    assert edition.total == 8 and variants == 2
    assert zones == {"newyork": True, "toronto": True, "london": False, "unknown": False}
    assert all(" GMT" in text for email, text in rows if (email or "").startswith(("london", "unknown")))
