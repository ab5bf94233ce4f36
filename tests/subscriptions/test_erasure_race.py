"""A signup racing the erasure of the same address, on PostgreSQL (where the two really run at
once; SQLite serialises writers): never a 5xx, and the end is one of the two orders.

Before: the erasure could commit between the signup's INSERT … ON CONFLICT (which found the
address taken) and its SELECT … FOR UPDATE (which then found nothing): 223 of 300 racing
signups answered 500."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from newsletter.database.models import Subscriber, Suppression
from newsletter.subscriptions.addresses import email_hash
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import serve

ROUNDS = 150
AT_ONCE = 15


async def test_signups_racing_erasures_never_fail(
    make_settings: SettingsFactory, database_url: str, admin_headers: dict[str, str]
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: nothing races")
    settings = make_settings(subscriptions={"rate_limit_per_minute": 100_000})
    emails = [f"racer{n}@readers.example" for n in range(ROUNDS)]
    statuses: Counter[int] = Counter()
    async with serve(settings) as (http, context):
        added = await http.post(
            "/api/subscribers", json=[{"email": e, "confirmed": True} for e in emails], headers=admin_headers
        )
        assert added.status_code == 200

        async def race(email: str) -> None:
            signup, erasure = await asyncio.gather(
                http.post("/subscribe", json={"email": email}),
                http.delete(f"/api/subscribers/{email}", headers=admin_headers),
            )
            statuses[signup.status_code] += 1
            statuses[erasure.status_code] += 1

        for start in range(0, ROUNDS, AT_ONCE):
            await asyncio.gather(*(race(email) for email in emails[start : start + AT_ONCE]))

        async with context.db.session() as session:
            rows = (await session.scalars(select(Subscriber))).all()
            suppressed = set((await session.scalars(select(Suppression.email_hash))).all())
    assert set(statuses) <= {202, 204}, statuses
    by_key = Counter(row.email_key for row in rows if row.email_key)
    assert all(count == 1 for count in by_key.values())
    for email in emails:
        # Erased in every order: the suppression entry is there.
        assert email_hash(email) in suppressed
        # Erasure last: no row carries the address. Signup last: it is pending again (a
        # suppressed address always goes through double opt-in), never active.
        holder = [row for row in rows if row.email_key == email]
        assert holder == [] or holder[0].status == "pending", (email, holder[0].status)
    assert sum(row.status == "erased" for row in rows) == ROUNDS
