"""Signups never confirmed are forgotten after `subscriptions.pending_expiry_days`."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Subscriber, utcnow
from newsletter.personal.links import Links
from newsletter.subscriptions.erasure import expire_pending
from tests.subscriptions.helpers import choices, count, events, outbox, owner, subscriber


async def age(context: AppContext, email_key: str, days: float) -> None:
    async with context.db.session() as session, session.begin():
        await session.execute(
            update(Subscriber)
            .where(Subscriber.email_key == email_key)
            .values(updated_at=utcnow() - timedelta(days=days))
        )


async def test_old_pending_signups_are_forgotten(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    for email in ("old@example.com", "recent@example.com", "returning@example.com"):
        await client.post("/subscribe", json={"email": email}, headers={"User-Agent": "ua"})
    returning = await subscriber(context, "returning@example.com")
    assert returning is not None
    base = settings.site.base_url
    await client.get(Links(settings).confirm(await owner(context, returning.id)).removeprefix(base))
    await client.post(Links(settings).unsubscribe(await owner(context, returning.id)).removeprefix(base))
    await client.post("/subscribe", json={"email": "returning@example.com"})
    await age(context, "old@example.com", 8)
    await age(context, "recent@example.com", 6)
    await age(context, "returning@example.com", 8)

    async with context.db.session() as session, session.begin():
        assert await expire_pending(session, settings=settings) == 2

    assert await subscriber(context, "old@example.com") is None
    recent = await subscriber(context, "recent@example.com")
    lapsed = await subscriber(context, "returning@example.com")
    assert recent is not None and recent.status == "pending"
    assert lapsed is not None and lapsed.status == "unsubscribed"
    assert await choices(context, lapsed.id) == {}
    assert await count(context, Subscriber) == 2
    assert [m.subscriber_id for m in await outbox(context) if m.status == "queued"] == [recent.id]
    forgotten = [e for e in await events(context) if e.kind in ("signup", "expiry") and e.ip is None]
    assert {e.kind for e in forgotten} == {"signup", "expiry"}
    async with context.db.session() as session, session.begin():
        assert await expire_pending(session, settings=settings) == 0
