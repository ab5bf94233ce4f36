"""A burst of concurrent signups: no 500 (no "database is locked"), every address stored once."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from newsletter.database.models import Message, Subscriber
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import serve

BURST = 200


async def test_two_hundred_concurrent_signups(make_settings: SettingsFactory) -> None:
    settings = make_settings(subscriptions={"rate_limit_per_minute": 10_000})
    emails = [f"burst{i}@example.com" for i in range(150)]
    # A quarter repeat an address (in another case), a few are not addresses at all.
    payloads = [{"email": e} for e in emails[40:]]
    for email in emails[:40]:  # side by side, so the two inserts race
        payloads += [{"email": email}, {"email": email.upper()}]
    payloads += [{"email": f"not-an-address-{i}"} for i in range(BURST - len(payloads))]
    async with serve(settings) as (http, context):
        responses = await asyncio.gather(*(http.post("/subscribe", json=p) for p in payloads))
        async with context.db.session() as session:
            keys = (await session.scalars(select(Subscriber.email_key))).all()
            owed = (await session.scalars(select(Message.subscriber_id))).all()
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {202: 190, 422: 10}, statuses
    assert sorted(key or "" for key in keys) == sorted(emails)
    assert len(owed) == len(set(owed)) == 150
