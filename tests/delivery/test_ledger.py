"""The ledger after a crash: which leased rows may have been sent, and what goes out first."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import update

from newsletter.context import AppContext
from newsletter.database.models import Delivery, utcnow
from newsletter.delivery.store import LEDGER
from newsletter.delivery.work import WorkItem, WorkKind
from tests.support.editions import EditionFactory, deliveries

LEASE = timedelta(minutes=5)


async def claim(context: AppContext, edition_id: int, owner: str, limit: int) -> list[WorkItem]:
    async with context.db.engine.begin() as conn:
        return await conn.run_sync(
            LEDGER.claim_digests,
            (edition_id, "daily"),
            owner=owner,
            limit=limit,
            now=utcnow(),
            lease=LEASE,
        )


async def test_a_dead_lease_comes_back_split_by_whether_its_attempt_started(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(10)
    claimed = await claim(context, edition.id, "dead-worker", 10)
    started = claimed[:3]
    async with context.db.engine.begin() as conn:
        assert await conn.run_sync(LEDGER.mark_started, started, owner="dead-worker", now=utcnow()) == set()
        assert await conn.run_sync(LEDGER.requeue_owners, ["dead-worker"], now=utcnow()) == 10
    rows = {d.id: d for d in await deliveries(context, edition.id)}
    maybe_sent = {item.id for item in started}
    # Those that reached SMTP may have gone out: due retries, their attempt counted.
    assert {rows[i].status for i in maybe_sent} == {"retry"}
    assert all(rows[i].attempts == 1 and rows[i].lease_owner is None for i in maybe_sent)
    # The rest never did: back in the queue as if never claimed.
    others = [d for i, d in rows.items() if i not in maybe_sent]
    assert Counter((d.status, d.attempts) for d in others) == {("queued", 0): 7}


async def test_due_retries_are_claimed_before_queued_work(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(10)
    claimed = await claim(context, edition.id, "dead-worker", 10)
    async with context.db.engine.begin() as conn:
        await conn.run_sync(LEDGER.mark_started, claimed[-2:], owner="dead-worker", now=utcnow())
        await conn.run_sync(LEDGER.requeue_owners, ["dead-worker"], now=utcnow())
    first = await claim(context, edition.id, "restarted", 3)
    assert {item.id for item in claimed[-2:]} <= {item.id for item in first}
    again = [d for d in await deliveries(context, edition.id) if d.id in {i.id for i in first}]
    # A new claim starts each attempt unmarked.
    assert all(d.status == "sending" and d.attempt_started_at is None for d in again)


async def test_a_started_mark_needs_the_lease(context: AppContext, edition_for: EditionFactory) -> None:
    edition = await edition_for(3)
    claimed = await claim(context, edition.id, "worker-a", 3)
    async with context.db.engine.begin() as conn:
        # The lease of the first row ran out and went to another worker meanwhile.
        await conn.execute(
            update(Delivery).where(Delivery.id == claimed[0].id).values(lease_owner="worker-b")
        )
        lost = await conn.run_sync(LEDGER.mark_started, claimed, owner="worker-a", now=utcnow())
    assert lost == {(WorkKind.DIGEST, claimed[0].id)}
    marked = {d.id for d in await deliveries(context, edition.id) if d.attempt_started_at is not None}
    assert marked == {claimed[1].id, claimed[2].id}


async def test_the_sweep_hands_back_expired_leases_only(
    context: AppContext, edition_for: EditionFactory
) -> None:
    """The one sweeper (every worker runs it) takes back what a vanished worker held."""
    edition = await edition_for(4)
    vanished = await claim(context, edition.id, "elsewhere:1:x", 3)
    async with context.db.engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id.in_([item.id for item in vanished]))
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        # Only this one had reached SMTP when its worker vanished.
        await conn.run_sync(LEDGER.mark_started, vanished[:1], owner="elsewhere:1:x", now=utcnow())
    alive = await claim(context, edition.id, "alive:2:y", 1)
    async with context.db.engine.begin() as conn:
        assert await conn.run_sync(LEDGER.requeue_expired, now=utcnow()) == 3
    rows = {d.id: d for d in await deliveries(context, edition.id)}
    assert (rows[vanished[0].id].status, rows[vanished[0].id].attempts) == ("retry", 1)
    assert {(rows[i.id].status, rows[i.id].attempts) for i in vanished[1:]} == {("queued", 0)}
    assert rows[alive[0].id].status == "sending" and rows[alive[0].id].lease_owner == "alive:2:y"
