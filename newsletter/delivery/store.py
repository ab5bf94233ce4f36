"""The ledger: every write to it goes through `LEDGER`, whoever makes it (the builder enqueueing
an edition, a signup owing a confirmation, a worker claiming, recording and handing back work,
a reader leaving, an operator cancelling, an erasure).

Digests (`deliveries`) and confirmation emails (`messages`) are rows of one shape
(`LeasedWork`); each statement is written once, in `LeasedQueue`, and made for both tables.
Statements are Core SQL over whole batches, synchronous over a `Connection`, so the same code
runs on a worker's ledger thread and, through `run_sync`, from async code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Select, Table, Update, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from newsletter.database.compiled import Compiled
from newsletter.database.models import Delivery, Edition, Event, Message, Subscriber, Subscription, utcnow
from newsletter.delivery.queues import LeasedQueue
from newsletter.delivery.work import Result, WorkItem, WorkKind
from newsletter.states import PENDING, DeliveryStatus, SubscriberStatus

T = TypeVar("T")
DELIVERIES = cast(Table, Delivery.__table__)
MESSAGES = cast(Table, Message.__table__)
SUBSCRIBERS = cast(Table, Subscriber.__table__)
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
EDITIONS = cast(Table, Edition.__table__)
EVENTS = cast(Table, Event.__table__)

# The audit event a hard bounce leaves on its subscriber (beside subscriptions.audit's kinds).
BOUNCE_EVENT = "bounce"

_RECIPIENTS = select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.email, SUBSCRIBERS.c.status, SUBSCRIBERS.c.token_nonce)

# Compiled once: a bounce storm, or a batch of refusals at RCPT time, runs each once per reader.
_INSERT_EVENT = Compiled(
    insert(EVENTS).values(
        at=bindparam("b_at"),
        kind=bindparam("b_kind"),
        subscriber_id=bindparam("b_reader"),
        newsletter_id=bindparam("b_newsletter"),
        detail=bindparam("b_detail"),
    )
)
_COUNT_BOUNCE = Compiled(
    update(SUBSCRIBERS)
    .where(SUBSCRIBERS.c.id == bindparam("b_reader"))
    .values(hard_bounces=SUBSCRIBERS.c.hard_bounces + 1, updated_at=bindparam("b_now"))
    .returning(SUBSCRIBERS.c.status, SUBSCRIBERS.c.hard_bounces)
)
_MARK_BOUNCED = Compiled(
    update(SUBSCRIBERS)
    .where(SUBSCRIBERS.c.id == bindparam("b_reader"))
    .values(status=SubscriberStatus.BOUNCED, updated_at=bindparam("b_now"))
)


def _skip(table: Table) -> Update:
    c = table.c
    return (
        update(table)
        .where(
            c.subscriber_id == bindparam("b_reader"),
            or_(*(c.status == status for status in PENDING)),
        )
        .values(
            status=DeliveryStatus.SKIPPED, last_reply=bindparam("b_reason"), updated_at=bindparam("b_now")
        )
    )


_SKIP_ALL = Compiled(_skip(DELIVERIES))
_SKIP_MESSAGES = Compiled(_skip(MESSAGES))
_SKIP_NEWSLETTER = Compiled(
    _skip(DELIVERIES).where(
        DELIVERIES.c.edition_id.in_(
            select(EDITIONS.c.id)
            .where(EDITIONS.c.newsletter_id == bindparam("b_newsletter"))
            .scalar_subquery()
        )
    )
)


@dataclass(frozen=True)
class HardBounce:
    subscriber_id: int
    newsletter_id: str | None
    edition_id: int | None
    reply: str | None


class LedgerStore:
    """Every write to the ledger, for both kinds of work."""

    def __init__(self) -> None:
        self.digests = LeasedQueue(DELIVERIES, WorkKind.DIGEST)
        self.confirmations = LeasedQueue(MESSAGES, WorkKind.CONFIRMATION)
        self.queues = {WorkKind.DIGEST: self.digests, WorkKind.CONFIRMATION: self.confirmations}

    # -- claiming ---------------------------------------------------------------------------

    def claim_confirmations(
        self, conn: Connection, *, owner: str, limit: int, now: datetime, lease: timedelta
    ) -> list[WorkItem]:
        """Lease due outbox messages, which go ahead of editions (SKIP LOCKED on PostgreSQL)."""
        c = MESSAGES.c
        due = (
            select(c.id)
            .where(c.status.in_(PENDING), c.next_attempt_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = self.confirmations.lease(conn, due, owner=owner, until=now + lease, now=now)
        items = [
            WorkItem(
                WorkKind.CONFIRMATION,
                row.id,
                row.subscriber_id,
                row.attempts,
                newsletter_id=row.newsletter_id,
            )
            for row in rows
        ]
        people = _people(conn, items)
        for item in items:
            person = people.get(item.subscriber_id)
            _attach(item, person, eligible=person is not None and person.status == SubscriberStatus.PENDING)
        return items

    def claim_digests(
        self,
        conn: Connection,
        edition: tuple[int, str],
        *,
        owner: str,
        limit: int,
        now: datetime,
        lease: timedelta,
    ) -> list[WorkItem]:
        """Lease up to `limit` due deliveries of one edition: due retries first, oldest first
        (they include what a crashed worker may have sent, so it goes out again at once rather
        than in a later crash's window), then queued ones."""
        edition_id, newsletter_id = edition
        c = DELIVERIES.c
        items: list[WorkItem] = []
        for status in (DeliveryStatus.RETRY, DeliveryStatus.QUEUED):
            due = (
                select(c.id)
                .where(c.edition_id == edition_id, c.status == status, c.next_attempt_at <= now)
                .limit(limit - len(items))
                .with_for_update(skip_locked=True)
            )
            if status is DeliveryStatus.RETRY:
                due = due.order_by(c.next_attempt_at)
            rows = self.digests.lease(conn, due, owner=owner, until=now + lease, now=now)
            items += [
                WorkItem(
                    WorkKind.DIGEST,
                    row.id,
                    row.subscriber_id,
                    row.attempts,
                    edition_id,
                    row.variant_id,
                    newsletter_id,
                )
                for row in rows
            ]
            if len(items) >= limit:
                break
        people = _people(conn, items)
        subscribed = _subscribed(conn, newsletter_id, {item.subscriber_id for item in items})
        for item in items:
            person = people.get(item.subscriber_id)
            active = person is not None and person.status == SubscriberStatus.ACTIVE
            _attach(item, person, eligible=active and item.subscriber_id in subscribed)
        return items

    # -- recording --------------------------------------------------------------------------

    def mark_started(
        self, conn: Connection, items: Sequence[WorkItem], *, owner: str, now: datetime
    ) -> set[tuple[WorkKind, int]]:
        """The commit a body waits for marks its attempt started (see LeasedQueue.requeue); the
        (kind, id) of rows no longer leased by `owner` come back."""
        lost: set[tuple[WorkKind, int]] = set()
        for kind, queue in self.queues.items():
            ids = [item.id for item in items if item.kind is kind]
            lost.update((kind, i) for i in queue.mark_started(conn, ids, owner=owner, now=now))
        return lost

    def record(
        self, conn: Connection, results: Sequence[Result], *, owner: str, now: datetime
    ) -> list[HardBounce]:
        """Write a group of outcomes; return the hard bounces among them, for the bounce policy."""
        for kind, queue in self.queues.items():
            queue.record(conn, [r for r in results if r.item.kind is kind], owner=owner, now=now)
        return [
            HardBounce(r.item.subscriber_id, r.item.newsletter_id, r.item.edition_id, r.reply)
            for r in results
            if r.hard_bounce
        ]

    def count_hard_bounces(
        self, conn: Connection, bounces: Sequence[HardBounce], *, now: datetime
    ) -> dict[int, int]:
        """Record each bounce (an event, one more on the subscriber); the active subscribers'
        new counts by id."""
        if not bounces:
            return {}
        _INSERT_EVENT.executemany(
            conn,
            [
                {
                    "b_at": now,
                    "b_kind": BOUNCE_EVENT,
                    "b_reader": b.subscriber_id,
                    "b_newsletter": b.newsletter_id,
                    "b_detail": json.dumps({"reply": b.reply, "edition": b.edition_id}),
                }
                for b in bounces
            ],
        )
        counts: dict[int, int] = {}
        for subscriber_id in sorted({b.subscriber_id for b in bounces}):
            row = _COUNT_BOUNCE.execute(conn, {"b_reader": subscriber_id, "b_now": now}).first()
            if row is not None and row[0] == SubscriberStatus.ACTIVE:
                counts[subscriber_id] = int(row[1])
        return counts

    def mark_bounced(self, conn: Connection, subscriber_ids: Sequence[int], *, now: datetime) -> None:
        """Readers mailed no more: bounced, and what was still queued for them skipped."""
        if not subscriber_ids:
            return
        _MARK_BOUNCED.executemany(conn, [{"b_reader": i, "b_now": now} for i in subscriber_ids])
        for subscriber_id in subscriber_ids:
            self.skip_for(conn, subscriber_id, None, reason=SubscriberStatus.BOUNCED, now=now)

    # -- leases -----------------------------------------------------------------------------

    def renew(self, conn: Connection, *, owner: str, until: datetime) -> None:
        for queue in self.queues.values():
            queue.renew(conn, owner=owner, until=until)

    def requeue_expired(self, conn: Connection, *, now: datetime) -> int:
        """Hand back rows whose worker stopped renewing its lease (crashed, killed, cut off)."""
        return sum(q.requeue(conn, now=now, expired_before=now, owners=()) for q in self.queues.values())

    def requeue_owners(self, conn: Connection, owners: Sequence[str], *, now: datetime) -> int:
        """Hand back rows leased by workers known to be dead (same host, process gone)."""
        if not owners:
            return 0
        return sum(q.requeue(conn, now=now, expired_before=None, owners=owners) for q in self.queues.values())

    def lease_owners(self, conn: Connection) -> list[str]:
        return sorted(set().union(*(q.owners(conn) for q in self.queues.values())))

    # -- enqueueing and skipping ------------------------------------------------------------

    def enqueue_edition(
        self, conn: Connection, source: Select[*tuple[Any, ...]], columns: Sequence[str]
    ) -> None:
        """One delivery per row of `source` (INSERT … SELECT: the database copies the list)."""
        conn.execute(insert(DELIVERIES).from_select(list(columns), source))

    def enqueue_confirmations(
        self, conn: Connection, owed: Sequence[tuple[int, str | None]], *, now: datetime
    ) -> None:
        """Confirmation emails owed to these (subscriber id, newsletter id) pairs, in one
        statement within the caller's transaction: a signup and its email commit together."""
        if owed:
            conn.execute(
                insert(MESSAGES),
                [confirmation_row(subscriber, newsletter, now) for subscriber, newsletter in owed],
            )

    def skip_for(
        self, conn: Connection, subscriber_id: int, newsletter_id: str | None, *, reason: str, now: datetime
    ) -> int:
        """A reader's not-yet-sent deliveries (of one newsletter, or all, confirmations
        included) are skipped. Rows already leased are caught by the worker's re-check."""
        values = {"b_reader": subscriber_id, "b_newsletter": newsletter_id, "b_reason": reason, "b_now": now}
        if newsletter_id is not None:
            return _SKIP_NEWSLETTER.executemany(conn, [values])
        skipped = _SKIP_ALL.executemany(conn, [values])
        _SKIP_MESSAGES.executemany(conn, [values])
        return skipped

    def requeue_unanswered(self, conn: Connection, edition_id: int, *, now: datetime) -> int:
        """An edition's failures that no SMTP server pronounced (a message that could not be
        built, a connection lost for good, a relay without SMTPUTF8): queued again, attempts
        reset, for a resume once the cause is fixed. A server's refusal stays failed."""
        c = DELIVERIES.c
        done = conn.execute(
            update(DELIVERIES)
            .where(c.edition_id == edition_id, c.status == DeliveryStatus.FAILED, c.last_code.is_(None))
            .values(status=DeliveryStatus.QUEUED, attempts=0, next_attempt_at=now, updated_at=now)
        )
        return int(getattr(done, "rowcount", 0) or 0)

    def skip_edition(self, conn: Connection, edition_id: int, *, reason: str, now: datetime) -> int:
        """What is not yet sent of an edition is skipped (it was cancelled)."""
        c = DELIVERIES.c
        done = conn.execute(
            update(DELIVERIES)
            .where(c.edition_id == edition_id, c.status.in_(PENDING))
            .values(status=DeliveryStatus.SKIPPED, last_reply=reason, updated_at=now)
        )
        return int(getattr(done, "rowcount", 0) or 0)

    def forget_subscribers(self, conn: Connection, subscriber_ids: Sequence[int]) -> None:
        """The outbox rows of signups about to be deleted (never confirmed: they were never sent
        a digest, so only confirmation emails name them)."""
        if subscriber_ids:
            conn.execute(delete(MESSAGES).where(MESSAGES.c.subscriber_id.in_(list(subscriber_ids))))

    def scrub_replies(self, conn: Connection, subscriber_id: int, *, replacement: str) -> None:
        """SMTP replies often quote the address: an erased reader's are replaced."""
        for queue in self.queues.values():
            c = queue.table.c
            conn.execute(
                update(queue.table)
                .where(c.subscriber_id == subscriber_id, c.last_reply.is_not(None))
                .values(last_reply=replacement)
            )


LEDGER = LedgerStore()


def _people(conn: Connection, items: Sequence[WorkItem]) -> dict[int, Any]:
    if not items:
        return {}
    ids = {item.subscriber_id for item in items}
    return {row.id: row for row in conn.execute(_RECIPIENTS.where(SUBSCRIBERS.c.id.in_(ids)))}


def _subscribed(conn: Connection, newsletter_id: str, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    rows = conn.execute(
        select(SUBSCRIPTIONS.c.subscriber_id).where(
            SUBSCRIPTIONS.c.newsletter_id == newsletter_id, SUBSCRIPTIONS.c.subscriber_id.in_(ids)
        )
    )
    return set(rows.scalars())


def _attach(item: WorkItem, person: Any, *, eligible: bool) -> None:
    item.email = person.email if person is not None else None
    item.nonce = person.token_nonce if person is not None else ""
    item.eligible = eligible and item.email is not None


def confirmation_row(subscriber_id: int, newsletter_id: str | None, now: datetime) -> dict[str, object]:
    return {
        "kind": WorkKind.CONFIRMATION.value,
        "subscriber_id": subscriber_id,
        "newsletter_id": newsletter_id,
        "status": DeliveryStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def within(db: AsyncSession | AsyncConnection, work: Callable[[Connection], T]) -> T:
    """Run a LEDGER statement in the caller's async transaction (a session or a connection)."""
    if isinstance(db, AsyncSession):
        return await db.run_sync(lambda session: work(session.connection()))
    return await db.run_sync(work)


async def skip_for(
    db: AsyncSession | AsyncConnection,
    subscriber_id: int,
    newsletter_id: str | None = None,
    *,
    reason: str = "unsubscribed",
    now: datetime | None = None,
) -> int:
    """LEDGER.skip_for in the caller's transaction: a reader who left gets nothing more."""
    moment = now or utcnow()
    return await within(
        db, lambda conn: LEDGER.skip_for(conn, subscriber_id, newsletter_id, reason=reason, now=moment)
    )


async def enqueue_confirmations(
    db: AsyncSession | AsyncConnection, owed: Sequence[tuple[int, str | None]], *, now: datetime | None = None
) -> None:
    """LEDGER.enqueue_confirmations in the caller's transaction: the email commits with the signup."""
    if owed:
        moment = now or utcnow()
        await within(db, lambda conn: LEDGER.enqueue_confirmations(conn, owed, now=moment))
