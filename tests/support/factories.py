"""Rows for tests, written in bulk with Core inserts (as an import would)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from newsletter.context import AppContext
from newsletter.database.models import Article, Subscriber, Subscription, utcnow
from newsletter.database.sections import canonical_sections

SECTIONS = ("World", "Politics", "Business", "Energy", "Defence")


async def add_subscribers(
    context: AppContext,
    count: int,
    *,
    newsletter: str = "daily",
    sections: Sequence[str] = (),
    status: str = "active",
    domain: str = "readers.example",
    prefix: str = "reader",
    timezone: str | None = None,
) -> list[int]:
    """`count` subscribers reader<n>@readers.example, subscribed to `newsletter`; returns their ids."""
    now = utcnow()
    async with context.db.session() as session:
        start = await session.scalar(select(Subscriber.id).order_by(Subscriber.id.desc()).limit(1)) or 0
        rows = [
            {
                "email": f"{prefix}{start + n}@{domain}",
                "email_key": f"{prefix}{start + n}@{domain}",
                "status": status,
                "source": "test",
                "hard_bounces": 0,
                "timezone": timezone,
                "created_at": now,
                "updated_at": now,
                "confirmed_at": now if status == "active" else None,
            }
            for n in range(1, count + 1)
        ]
        for chunk in range(0, len(rows), 5000):
            await session.execute(insert(Subscriber), rows[chunk : chunk + 5000])
        ids = list(
            (
                await session.scalars(
                    select(Subscriber.id).where(Subscriber.id > start).order_by(Subscriber.id)
                )
            ).all()
        )
        chosen = canonical_sections(sections)
        links = [
            {
                "subscriber_id": i,
                "newsletter_id": newsletter,
                "sections": chosen,
                "created_at": now,
                "updated_at": now,
            }
            for i in ids
        ]
        for chunk in range(0, len(links), 5000):
            await session.execute(insert(Subscription), links[chunk : chunk + 5000])
        await session.commit()
    return ids


async def add_articles(
    context: AppContext,
    count: int,
    *,
    sections: Sequence[str] = SECTIONS,
    now: datetime | None = None,
    with_image: bool = True,
) -> list[int]:
    """`count` fresh articles spread over the last hours, cycling through `sections`."""
    now = now or utcnow()
    async with context.db.session() as session:
        articles = [
            Article(
                guid=f"https://londondaily.example/story/{n}-{now.timestamp()}",
                canonical_url=f"https://londondaily.example/story/{n}-{now.timestamp()}",
                url=f"https://londondaily.example/story/{n}-{now.timestamp()}",
                title=f"Story number {n}: Britain and the big picture",
                summary=f"<p>Summary of story {n}, with <b>detail</b> a reader cares about.</p>",
                author="London Daily staff",
                section=sections[n % len(sections)] if sections else None,
                image_url="https://londondaily.example/images/lead.jpg" if with_image and n == 0 else None,
                published_at=now - timedelta(minutes=10 + n * 7),
                feed_url="test",
                content_hash=f"hash-{n}",
            )
            for n in range(count)
        ]
        session.add_all(articles)
        await session.commit()
        return [a.id for a in articles]
