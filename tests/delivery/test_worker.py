"""The worker against real aiosmtpd servers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition, Event, Message, Subscriber, utcnow
from newsletter.delivery.store import enqueue_confirmations
from newsletter.delivery.work import WorkItem
from newsletter.delivery.worker import Worker
from newsletter.delivery.workstore import WorkerStore
from newsletter.editions import service
from newsletter.editions.lifecycle import EditionControl
from newsletter.editions.sending import drain, worker_for
from tests.support.editions import EditionFactory, Scenario, addresses, deliveries
from tests.support.factories import add_subscribers
from tests.support.smtp import FaultyMailbox, Mailbox, SmtpServer


def every_other(address: str) -> bool:
    return int(address.split("@")[0].removeprefix("reader")) % 2 == 0


async def test_every_subscriber_gets_the_edition_once(
    context: AppContext, smtp_server: SmtpServer, edition_for: EditionFactory
) -> None:
    edition = await edition_for(60)
    assert edition.status == "sending" and edition.total == 60
    stats = await drain(context, editions={edition.id})
    assert stats.sent == 60
    received = smtp_server.handler.messages()
    assert Counter(r for m in received for r in m.rcpt_tos) == Counter(
        set((await addresses(context)).values())
    )
    rows = await deliveries(context, edition.id)
    assert {d.status for d in rows} == {"sent"}
    assert all(d.attempts == 1 and d.last_code == 250 and d.sent_at for d in rows)
    assert {d.message_id for d in rows} == {m.message_id for m in received}
    report = await service.report(context, edition.id)
    assert report.status == "done" and report.counts["sent"] == 60


async def test_temporary_failures_are_retried_until_sent(scenario: Scenario) -> None:
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: (
            "451 4.7.1 greylisted" if attempt == 1 and every_other(address) else None
        )
    )
    async with scenario(handler, 30) as s:
        stats = await drain(s.context, editions={s.edition.id})
        rows = await deliveries(s.context, s.edition.id)
    assert stats.sent == 30 and stats.retried == 15
    assert {d.status for d in rows} == {"sent"}
    assert Counter(d.attempts for d in rows) == {1: 15, 2: 15}
    assert handler.count() == 30


async def test_421_after_data_is_retried(scenario: Scenario) -> None:
    seen: set[str] = set()

    def once(rcpts: list[str]) -> str | None:
        if rcpts[0] in seen:
            return None
        seen.add(rcpts[0])
        return "421 4.3.2 service shutting down"

    async with scenario(FaultyMailbox(data=once), 10) as s:
        await drain(s.context, editions={s.edition.id})
        rows = await deliveries(s.context, s.edition.id)
    assert {d.status for d in rows} == {"sent"} and {d.attempts for d in rows} == {2}
    assert s.handler.count() == 10


async def test_permanent_refusals_fail_at_once_and_mark_bounces(scenario: Scenario) -> None:
    refused = {"reader3@readers.example", "reader7@readers.example"}
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: "550 5.1.1 no such mailbox" if address in refused else None
    )
    async with scenario(handler, 40, delivery={"pause_failure_rate": 0.5}) as s:
        stats = await drain(s.context, editions={s.edition.id})
        rows = await deliveries(s.context, s.edition.id)
        async with s.context.db.session() as session:
            bounced = (
                await session.scalars(select(Subscriber.email).where(Subscriber.status == "bounced"))
            ).all()
            events = (await session.scalars(select(Event).where(Event.kind == "bounce"))).all()
    failed = [d for d in rows if d.status == "failed"]
    assert stats.failed == 2 and len(failed) == 2
    assert all(
        d.attempts == 1 and d.last_code == 550 and "no such mailbox" in (d.last_reply or "") for d in failed
    )
    assert set(bounced) == refused
    assert len(events) == 2
    assert handler.count() == 38


async def test_bounce_threshold_counts_hard_bounces(scenario: Scenario) -> None:
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: "550 5.1.1 unknown" if address == "reader1@readers.example" else None
    )
    async with scenario(handler, 5, delivery={"bounce_threshold": 2, "pause_failure_rate": 1}) as s:
        await drain(s.context, editions={s.edition.id})
        async with s.context.db.session() as session:
            first = await session.scalar(
                select(Subscriber).where(Subscriber.email == "reader1@readers.example")
            )
            assert first is not None and first.status == "active" and first.hard_bounces == 1


async def test_gives_up_after_max_attempts(scenario: Scenario) -> None:
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: (
            "452 4.2.2 mailbox full" if address == "reader1@readers.example" else None
        )
    )
    async with scenario(handler, 3, smtp={"max_attempts": 3}, delivery={"pause_failure_rate": 1}) as s:
        await drain(s.context, editions={s.edition.id})
        rows = {d.subscriber_id: d for d in await deliveries(s.context, s.edition.id)}
        first = min(rows)
    assert rows[first].status == "failed" and rows[first].attempts == 3 and rows[first].last_code == 452
    assert handler.rcpt_attempts["reader1@readers.example"] == 3
    assert [d.status for d in rows.values()].count("sent") == 2


async def test_dropped_connection_mid_data_is_retried(scenario: Scenario) -> None:
    dropped: set[str] = set()

    def drop_first_time(rcpts: list[str]) -> bool:
        if every_other(rcpts[0]) and rcpts[0] not in dropped:
            dropped.add(rcpts[0])
            return True
        return False

    async with scenario(FaultyMailbox(drop_during_data=drop_first_time), 12) as s:
        await drain(s.context, editions={s.edition.id})
        rows = await deliveries(s.context, s.edition.id)
    assert {d.status for d in rows} == {"sent"}
    assert Counter(d.attempts for d in rows) == {1: 6, 2: 6}
    assert Counter(r for m in s.handler.messages() for r in m.rcpt_tos).most_common(1)[0][1] == 1


async def test_a_server_slower_than_the_timeout_is_retried(scenario: Scenario) -> None:
    slow = FaultyMailbox(rcpt=None)
    calls: Counter[str] = Counter()

    async def rcpt_reply(address: str, attempt: int, session: object) -> str | None:
        calls[address] += 1
        if address == "reader1@readers.example" and attempt == 1:
            await asyncio.sleep(2)
        return None

    slow.rcpt_reply = rcpt_reply  # type: ignore[method-assign]
    async with scenario(slow, 3, smtp={"timeout": 0.3}) as s:
        await drain(s.context, editions={s.edition.id})
        rows = {d.subscriber_id: d for d in await deliveries(s.context, s.edition.id)}
    first = rows[min(rows)]
    assert first.status == "sent" and first.attempts == 2
    assert all(d.status == "sent" for d in rows.values())


async def test_server_down_for_a_while_costs_no_attempts(scenario: Scenario) -> None:
    async with scenario(Mailbox(), 20, server_up=False) as s:
        before = unavailable()
        work = asyncio.create_task(drain(s.context, editions={s.edition.id}))
        while unavailable() < before + 3:
            await asyncio.sleep(0.02)
        assert s.handler.count() == 0
        s.server.start()
        await asyncio.wait_for(work, 30)
        rows = await deliveries(s.context, s.edition.id)
    assert {d.status for d in rows} == {"sent"}
    assert {d.attempts for d in rows} == {1}
    assert s.handler.count() == 20


def unavailable() -> float:
    return REGISTRY.get_sample_value("newsletter_smtp_unavailable_total") or 0.0


async def test_an_edition_pauses_itself_when_too_many_fail_and_resumes(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="newsletter")
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: "550 5.7.1 blocked" if int(address[6:].split("@")[0]) % 5 == 0 else None
    )
    async with scenario(
        handler, 100, smtp={"concurrency": 2}, delivery={"pause_window": 40, "batch_size": 10}
    ) as s:
        await drain(s.context, editions={s.edition.id})
        paused = await service.report(s.context, s.edition.id)
        assert paused.status == "paused"
        assert paused.pause_reason and "failed permanently" in paused.pause_reason
        assert paused.counts["queued"] > 0
        # The reason names the reply behind the failures, counted as the ledger counts them when
        # the edition paused (a few more may have failed while their messages were in flight).
        [named] = re.findall(r"most often: (\d+) × 550 5\.7\.1 blocked\.", paused.pause_reason)
        stated = re.search(r"paused automatically: (\d+) of", paused.pause_reason)
        assert stated is not None and int(named) == int(stated.group(1)) <= paused.counts["failed"]
        resumed = await service.resume(s.context, s.edition.id)
        assert resumed.status == "sending"
        await drain(s.context, editions={s.edition.id})
        done = await service.report(s.context, s.edition.id)
    assert done.status == "done"
    assert done.counts["failed"] == 20 and done.counts["sent"] == 80
    # Pausing hands claimed messages back; no worker lost a lease (that warning used to appear).
    events = [record.getMessage() for record in caplog.records]
    assert "edition.paused" in events and "delivery.lease_lost" not in events


async def test_a_long_running_worker_sends_an_edition_again_once_it_is_resumed(scenario: Scenario) -> None:
    """Under `serve` one worker runs for days: an edition it paused, then resumed by an operator,
    is sent on by that same worker (it used to hand the edition's messages back for ever)."""
    handler = FaultyMailbox(
        rcpt=lambda address, attempt: "550 5.7.1 blocked" if int(address[6:].split("@")[0]) % 5 == 0 else None
    )
    async with scenario(
        handler, 100, smtp={"concurrency": 2}, delivery={"pause_window": 40, "batch_size": 10}
    ) as s:
        stopping = asyncio.Event()
        running = asyncio.create_task(worker_for(s.context).run(stopping))
        paused = await until(s.context, s.edition.id, "paused")
        assert paused.counts["queued"] > 0
        await service.resume(s.context, s.edition.id)
        done = await until(s.context, s.edition.id, "done")
        stopping.set()
        await asyncio.wait_for(running, 30)
    assert done.counts["failed"] == 20 and done.counts["sent"] == 80
    assert handler.count() == 80


async def until(
    context: AppContext, edition_id: int, status: str, seconds: float = 60
) -> service.EditionReport:
    """The edition's report once it reaches `status` (polling the database; fails after `seconds`)."""
    async with asyncio.timeout(seconds):
        while (report := await service.report(context, edition_id)).status != status:
            await asyncio.sleep(0.05)
    return report


async def test_readers_who_left_after_enqueue_are_skipped(
    context: AppContext, smtp_server: SmtpServer, edition_for: EditionFactory
) -> None:
    edition = await edition_for(10)
    async with context.db.session() as session:
        await session.execute(
            update(Subscriber)
            .where(Subscriber.email.in_(["reader2@readers.example", "reader5@readers.example"]))
            .values(status="unsubscribed", updated_at=utcnow())
        )
        await session.commit()
    await drain(context, editions={edition.id})
    rows = await deliveries(context, edition.id)
    assert Counter(d.status for d in rows) == {"sent": 8, "skipped": 2}
    assert "reader2@readers.example" not in smtp_server.handler.recipients()


async def test_confirmations_go_out_ahead_of_the_edition(scenario: Scenario) -> None:
    async with scenario(Mailbox(), 20, smtp={"concurrency": 1}) as s:
        pending = await add_subscribers(s.context, 3, status="pending", prefix="new")
        async with s.context.db.session() as session:
            await enqueue_confirmations(session, [(subscriber_id, "daily") for subscriber_id in pending])
            await session.commit()
        await drain(s.context)
        async with s.context.db.session() as session:
            statuses = (await session.scalars(select(Message.status))).all()
    first = [m.rcpt_tos[0] for m in s.handler.messages()[:3]]
    assert all(address.startswith("new") for address in first)
    assert statuses == ["sent", "sent", "sent"]
    assert s.handler.count() == 23


async def test_reconnects_after_its_share_of_messages(scenario: Scenario) -> None:
    async with scenario(Mailbox(), 10, smtp={"concurrency": 1, "messages_per_connection": 3}) as s:
        await drain(s.context, editions={s.edition.id})
    assert s.handler.count() == 10
    assert s.handler.connections == 4


async def test_cancel_skips_what_is_not_sent(
    context: AppContext, smtp_server: SmtpServer, edition_for: EditionFactory
) -> None:
    edition = await edition_for(15)
    cancelled = await service.cancel(context, edition.id)
    assert cancelled.status == "cancelled" and cancelled.counts["skipped"] == 15
    await drain(context, editions={edition.id})
    assert smtp_server.handler.count() == 0


async def test_sigterm_like_stop_releases_unsent_work(scenario: Scenario) -> None:
    handler = FaultyMailbox(delay=0.05)
    async with scenario(handler, 40, smtp={"concurrency": 2}) as s:
        stopping = asyncio.Event()
        worker = worker_for(s.context, only={s.edition.id})
        work = asyncio.create_task(worker.run(stopping))
        while handler.count() < 4:
            await asyncio.sleep(0.01)
        stopping.set()
        stats = await asyncio.wait_for(work, 10)
        rows = await deliveries(s.context, s.edition.id)
        async with s.context.db.session() as session:
            edition = await session.get(Edition, s.edition.id)
    statuses = Counter(d.status for d in rows)
    assert statuses["sending"] == 0
    assert statuses["sent"] == stats.sent == handler.count()
    assert statuses["queued"] == 40 - stats.sent
    assert all(d.attempts == 0 for d in rows if d.status == "queued")
    assert edition is not None and edition.status == "sending"


async def test_a_running_worker_sends_a_new_signups_confirmation(
    context: AppContext, smtp_server: SmtpServer
) -> None:
    stopping = asyncio.Event()
    work = asyncio.create_task(worker_for(context).run(stopping))
    try:
        await asyncio.sleep(0)  # let the worker start before the signup happens
        [subscriber_id] = await add_subscribers(context, 1, status="pending", prefix="newcomer")
        async with context.db.session() as session:
            await enqueue_confirmations(session, [(subscriber_id, "daily")])
            await session.commit()
        async with asyncio.timeout(20):
            while smtp_server.handler.count() == 0:
                await asyncio.sleep(0.02)
    finally:
        stopping.set()
        await work
    assert smtp_server.handler.recipients() == ["newcomer1@readers.example"]


class LeaseLosingStore(WorkerStore):
    """The real ledger, losing the lease of its first batch as soon as it has claimed it, as when
    the database was away for longer than a lease lasts and a sweeper handed the rows back."""

    lost: list[int]

    async def claim(self, editions: Sequence[tuple[int, str]], *, limit: int) -> list[WorkItem]:
        items = await super().claim(editions, limit=limit)
        if items and not hasattr(self, "lost"):
            self.lost = [item.id for item in items]
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(self.lost))
                    .values(status="queued", attempts=0, lease_owner=None, lease_expires_at=None)
                )
        return items


async def test_a_worker_that_lost_its_lease_sends_nothing_of_it(scenario: Scenario) -> None:
    async with scenario(Mailbox(), 20, smtp={"concurrency": 2}) as s:
        settings = s.context.settings
        store = LeaseLosingStore(
            s.context.db,
            settings.database,
            owner="losing",
            lease=timedelta(minutes=5),
            config=settings.delivery,
        )
        control = EditionControl(s.context.db.engine, settings.delivery)
        worker = Worker.assemble(s.context, control, only={s.edition.id}, exit_when_idle=True, store=store)
        await asyncio.wait_for(worker.run(asyncio.Event()), 60)
        rows = await deliveries(s.context, s.edition.id)
        received = Counter(r for m in s.server.handler.messages() for r in m.rcpt_tos)
    assert len(store.lost) == 20
    # The bodies of the lost rows never went out under the old lease; reclaimed, each went once.
    assert {d.status for d in rows} == {"sent"}
    assert len(received) == 20 and set(received.values()) == {1}
