"""The service functions on their own: races between transactions, and what each leaves behind."""

from __future__ import annotations

import asyncio

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Subscriber, utcnow
from newsletter.subscriptions import signup as signups
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from tests.subscriptions.helpers import count, events, outbox, subscriber


async def test_a_signup_racing_another_for_the_same_address_uses_its_row(
    context: AppContext, settings: Settings
) -> None:
    address = normalise_address("race@example.com")
    request = signups.SignupRequest(address, {"daily": []})
    async with context.db.session() as first:
        await first.begin()
        first.add(
            Subscriber(
                email="Race@example.com", email_key=address.key, status="pending", source="web",
                hard_bounces=0, created_at=utcnow(), updated_at=utcnow(),
            )
        )  # fmt: skip
        await first.flush()

        async def second_signup() -> signups.SignupOutcome:
            async with context.db.session() as second, second.begin():
                return await signups.signup(
                    second, settings=settings, request=request, actor=Actor.web("1.2.3.4", "x")
                )

        # The second transaction waits (for the unique index on PostgreSQL, for the write lock
        # on SQLite) until the first commits, then carries on with the committed row.
        racing = asyncio.create_task(second_signup())
        await asyncio.sleep(0.2)
        assert not racing.done()
        await first.commit()
        winner = await asyncio.wait_for(racing, 30)
    stored = await subscriber(context, "race@example.com")
    assert stored is not None and winner.subscriber_id == stored.id and not winner.new
    assert await count(context, Subscriber) == 1
    assert [m.subscriber_id for m in await outbox(context)] == [stored.id]
    assert [e.subscriber_id for e in await events(context, "signup")] == [stored.id]
