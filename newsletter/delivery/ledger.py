"""The delivery ledger: claiming work under a lease, recording outcomes, and what follows from them.

Every statement here is Core SQL over whole batches: no ORM object per recipient. The functions
are synchronous over a `Connection`, so the same code runs on the worker's ledger thread and,
through `AsyncConnection.run_sync`, from async code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Update,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import (
    Delivery,
    Edition,
    Event,
    Message,
    Subscriber,
    Subscription,
    utcnow,
)

DELIVERIES = cast(Table, Delivery.__table__)
MESSAGES = cast(Table, Message.__table__)
SUBSCRIBERS = cast(Table, Subscriber.__table__)
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
EDITIONS = cast(Table, Edition.__table__)
EVENTS = cast(Table, Event.__table__)

PENDING = ("queued", "retry")
UNFINISHED = ("queued", "retry", "sending")
FINAL = ("sent", "failed", "skipped")
STATUSES = ("queued", "sending", "sent", "retry", "failed", "skipped")


@dataclass(slots=True)
class WorkItem:
    """A claimed delivery (kind "delivery") or outbox message (kind "message")."""

    kind: str
    id: int
    subscriber_id: int
    attempts: int
    edition_id: int | None = None
    variant_id: int | None = None
    newsletter_id: str | None = None
    email: str | None = None
    # The subscriber's link nonce, signed into their links (subscriptions.tokens).
    nonce: str = ""
    # Decided at claim: the subscriber is active and still subscribed to the newsletter.
    eligible: bool = False


@dataclass(slots=True)
class Result:
    item: WorkItem
    # sent | retry | failed | skipped | released (handed back unattempted)
    status: str
    code: int | None = None
    reply: str | None = None
    message_id: str | None = None
    next_attempt_at: datetime | None = None
    hard_bounce: bool = False


# -- claiming ---------------------------------------------------------------------------------


def _leased(table: Table, owner: str, until: datetime) -> dict[str, object]:
    """What a claim writes: leased to `owner`, one more attempt, not yet started."""
    return {
        "status": "sending",
        "lease_owner": owner,
        "lease_expires_at": until,
        "attempt_started_at": None,
        "attempts": table.c.attempts + 1,
    }


def claim_deliveries(
    conn: Connection,
    edition: tuple[int, str],
    *,
    owner: str,
    limit: int,
    now: datetime,
    lease: timedelta,
) -> list[WorkItem]:
    """Lease up to `limit` due deliveries of one edition (SKIP LOCKED on PostgreSQL): due retries
    first, oldest first (they include what a crashed worker may have sent, so it goes out again
    at once rather than in a later crash's window), then queued ones."""
    edition_id, newsletter_id = edition
    items: list[WorkItem] = []
    for status in ("retry", "queued"):
        due = (
            select(DELIVERIES.c.id)
            .where(
                DELIVERIES.c.edition_id == edition_id,
                DELIVERIES.c.status == status,
                DELIVERIES.c.next_attempt_at <= now,
            )
            .limit(limit - len(items))
            .with_for_update(skip_locked=True)
        )
        if status == "retry":
            due = due.order_by(DELIVERIES.c.next_attempt_at)
        claimed = conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(due.scalar_subquery()))
            .values(**_leased(DELIVERIES, owner, now + lease), updated_at=now)
            .returning(
                DELIVERIES.c.id, DELIVERIES.c.subscriber_id, DELIVERIES.c.variant_id, DELIVERIES.c.attempts
            )
        )
        items += [
            WorkItem(
                "delivery", row.id, row.subscriber_id, row.attempts, edition_id, row.variant_id, newsletter_id
            )
            for row in claimed
        ]
        if len(items) >= limit:
            break
    _attach_recipients(conn, items, newsletter_id)
    return items


def claim_messages(
    conn: Connection, *, owner: str, limit: int, now: datetime, lease: timedelta
) -> list[WorkItem]:
    """Lease due outbox messages (confirmations), which go ahead of editions."""
    due = (
        select(MESSAGES.c.id)
        .where(MESSAGES.c.status.in_(PENDING), MESSAGES.c.next_attempt_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = conn.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id.in_(due.scalar_subquery()))
        .values(**_leased(MESSAGES, owner, now + lease))
        .returning(MESSAGES.c.id, MESSAGES.c.subscriber_id, MESSAGES.c.attempts, MESSAGES.c.newsletter_id)
    )
    items = [
        WorkItem("message", row.id, row.subscriber_id, row.attempts, newsletter_id=row.newsletter_id)
        for row in claimed
    ]
    if items:
        rows = conn.execute(_RECIPIENTS.where(SUBSCRIBERS.c.id.in_({item.subscriber_id for item in items})))
        found = {row.id: row for row in rows}
        for item in items:
            row = found.get(item.subscriber_id)
            item.email = row.email if row else None
            item.nonce = row.token_nonce if row else ""
            item.eligible = row is not None and row.email is not None and row.status == "pending"
    return items


_RECIPIENTS = select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.email, SUBSCRIBERS.c.status, SUBSCRIBERS.c.token_nonce)


def _attach_recipients(conn: Connection, items: list[WorkItem], newsletter_id: str) -> None:
    if not items:
        return
    ids = {item.subscriber_id for item in items}
    rows = conn.execute(_RECIPIENTS.where(SUBSCRIBERS.c.id.in_(ids)))
    people = {row.id: row for row in rows}
    subscribed = set(
        (
            conn.execute(
                select(SUBSCRIPTIONS.c.subscriber_id).where(
                    SUBSCRIPTIONS.c.newsletter_id == newsletter_id, SUBSCRIPTIONS.c.subscriber_id.in_(ids)
                )
            )
        ).scalars()
    )
    for item in items:
        person = people.get(item.subscriber_id)
        item.email = person.email if person else None
        item.nonce = person.token_nonce if person else ""
        item.eligible = (
            person is not None
            and person.status == "active"
            and person.email is not None
            and item.subscriber_id in subscribed
        )


def active_editions(conn: Connection) -> list[tuple[int, str]]:
    rows = conn.execute(
        select(EDITIONS.c.id, EDITIONS.c.newsletter_id)
        .where(EDITIONS.c.status == "sending")
        .order_by(EDITIONS.c.id)
    )
    return [(row.id, row.newsletter_id) for row in rows]


# -- recording --------------------------------------------------------------------------------

_RECORD_DELIVERY = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("b_id"),
        DELIVERIES.c.lease_owner == bindparam("b_owner"),
        DELIVERIES.c.status == "sending",
    )
    .values(
        status=bindparam("b_status"),
        attempts=DELIVERIES.c.attempts - bindparam("b_undo"),
        last_code=bindparam("b_code"),
        last_reply=bindparam("b_reply"),
        message_id=func.coalesce(bindparam("b_message_id"), DELIVERIES.c.message_id),
        sent_at=bindparam("b_sent_at"),
        next_attempt_at=func.coalesce(bindparam("b_next"), DELIVERIES.c.next_attempt_at),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("b_now"),
    )
)

_RECORD_MESSAGE = (
    update(MESSAGES)
    .where(
        MESSAGES.c.id == bindparam("b_id"),
        MESSAGES.c.lease_owner == bindparam("b_owner"),
        MESSAGES.c.status == "sending",
    )
    .values(
        status=bindparam("b_status"),
        attempts=MESSAGES.c.attempts - bindparam("b_undo"),
        last_code=bindparam("b_code"),
        last_reply=bindparam("b_reply"),
        message_id=func.coalesce(bindparam("b_message_id"), MESSAGES.c.message_id),
        sent_at=bindparam("b_sent_at"),
        next_attempt_at=func.coalesce(bindparam("b_next"), MESSAGES.c.next_attempt_at),
        lease_owner=None,
        lease_expires_at=None,
    )
)


def _params(result: Result, owner: str, now: datetime) -> dict[str, object]:
    released = result.status == "released"
    return {
        "b_id": result.item.id,
        "b_owner": owner,
        "b_status": "queued" if released else result.status,
        "b_undo": 1 if released else 0,
        "b_code": result.code,
        "b_reply": result.reply,
        "b_message_id": result.message_id,
        "b_sent_at": now if result.status == "sent" else None,
        "b_next": result.next_attempt_at,
        "b_now": now,
    }


def _still_leased(table: Table, owner: object) -> ColumnElement[bool]:
    return (table.c.lease_owner == owner) & (table.c.status == "sending")


def _mark_started_statement(table: Table) -> Update:
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), _still_leased(table, bindparam("b_owner")))
        .values(attempt_started_at=bindparam("b_now"))
    )


_LEASED = {"delivery": DELIVERIES, "message": MESSAGES}
_MARK_STARTED = {kind: _mark_started_statement(table) for kind, table in _LEASED.items()}


def mark_started(
    conn: Connection, items: Sequence[WorkItem], *, owner: str, now: datetime
) -> set[tuple[str, int]]:
    """Note that these leased rows are about to reach SMTP (see `requeue_where`). Returns the
    (kind, id) of those no longer leased by `owner` (expired and taken back): their bodies must
    not go out, another worker may be sending them."""
    lost: set[tuple[str, int]] = set()
    for kind, statement in _MARK_STARTED.items():
        ids = [item.id for item in items if item.kind == kind]
        if not ids:
            continue
        marked = conn.execute(statement, [{"b_id": i, "b_owner": owner, "b_now": now} for i in ids]).rowcount
        if marked != len(ids):
            table = _LEASED[kind]
            held = select(table.c.id).where(table.c.id.in_(ids), _still_leased(table, owner))
            still = set(conn.execute(held).scalars())
            lost.update((kind, i) for i in ids if i not in still)
    return lost


def record_results(
    conn: Connection, results: Sequence[Result], *, owner: str, now: datetime, bounce_threshold: int
) -> list[int]:
    """Write a group of outcomes in the caller's transaction; return newly bounced subscriber ids."""
    deliveries = [_params(r, owner, now) for r in results if r.item.kind == "delivery"]
    messages = [_params(r, owner, now) for r in results if r.item.kind == "message"]
    if deliveries:
        conn.execute(_RECORD_DELIVERY, deliveries)
    if messages:
        conn.execute(_RECORD_MESSAGE, messages)
    bounces = [r for r in results if r.hard_bounce]
    return _record_bounces(conn, bounces, now, bounce_threshold) if bounces else []


def _record_bounces(conn: Connection, bounces: Sequence[Result], now: datetime, threshold: int) -> list[int]:
    conn.execute(
        insert(EVENTS),
        [
            {
                "at": now,
                "kind": "bounce",
                "subscriber_id": r.item.subscriber_id,
                "newsletter_id": r.item.newsletter_id,
                "detail": json.dumps({"reply": r.reply, "edition": r.item.edition_id}),
            }
            for r in bounces
        ],
    )
    ids = sorted({r.item.subscriber_id for r in bounces})
    newly_bounced = list(
        (
            conn.execute(
                select(SUBSCRIBERS.c.id).where(
                    SUBSCRIBERS.c.id.in_(ids),
                    SUBSCRIBERS.c.status == "active",
                    SUBSCRIBERS.c.hard_bounces + 1 >= threshold,
                )
            )
        ).scalars()
    )
    conn.execute(
        update(SUBSCRIBERS)
        .where(SUBSCRIBERS.c.id.in_(ids))
        .values(
            hard_bounces=SUBSCRIBERS.c.hard_bounces + 1,
            status=case(
                (SUBSCRIBERS.c.id.in_(newly_bounced or [-1]), literal("bounced")), else_=SUBSCRIBERS.c.status
            ),
            updated_at=now,
        )
    )
    for subscriber_id in newly_bounced:
        _skip_pending(conn, subscriber_id, None, "bounced", now)
    return newly_bounced


# -- leases -----------------------------------------------------------------------------------


def renew_leases(conn: Connection, *, owner: str, until: datetime) -> None:
    for table in (DELIVERIES, MESSAGES):
        conn.execute(
            update(table)
            .where(table.c.status == "sending", table.c.lease_owner == owner)
            .values(lease_expires_at=until)
        )


def requeue_expired(conn: Connection, *, now: datetime) -> int:
    """Hand back rows whose worker stopped renewing its lease (crashed, killed, cut off)."""
    return requeue_where(conn, now=now, expired_before=now)


def requeue_owners(conn: Connection, owners: Sequence[str], *, now: datetime) -> int:
    """Hand back rows leased by workers known to be dead (same host, process gone)."""
    return requeue_where(conn, now=now, owners=owners) if owners else 0


def requeue_where(
    conn: Connection,
    *,
    now: datetime,
    expired_before: datetime | None = None,
    owners: Sequence[str] = (),
) -> int:
    """Hand back leased rows. Those whose attempt had started may have been sent: they become
    due retries (claimed first, same Message-ID). The others never reached SMTP: they go back
    to the queue and their attempt is not counted."""
    total = 0
    for table in (DELIVERIES, MESSAGES):
        condition = table.c.status == "sending"
        if expired_before is not None:
            condition = condition & (table.c.lease_expires_at < expired_before)
        if owners:
            condition = condition & table.c.lease_owner.in_(list(owners))
        started = table.c.attempt_started_at.is_not(None)
        for subset, values in (
            (started, {"status": "retry", "next_attempt_at": now}),
            (
                ~started,
                {"status": "queued", "attempts": case((table.c.attempts > 0, table.c.attempts - 1), else_=0)},
            ),
        ):
            result = conn.execute(
                update(table)
                .where(condition & subset)
                .values(**values, lease_owner=None, lease_expires_at=None)
            )
            total += int(getattr(result, "rowcount", 0) or 0)
    return total


def lease_owners(conn: Connection) -> list[str]:
    owners: set[str] = set()
    for table in (DELIVERIES, MESSAGES):
        rows = conn.execute(
            select(table.c.lease_owner)
            .where(table.c.status == "sending", table.c.lease_owner.is_not(None))
            .distinct()
        )
        owners.update(str(owner) for owner in rows.scalars())
    return sorted(owners)


# -- editions ---------------------------------------------------------------------------------


def edition_counts(conn: Connection, edition_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(DELIVERIES.c.status, func.count())
        .where(DELIVERIES.c.edition_id == edition_id)
        .group_by(DELIVERIES.c.status)
    )
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(count) for status, count in rows.all()})
    return counts


def finish_if_done(conn: Connection, edition_id: int, *, now: datetime) -> bool:
    """Mark a sending edition done when none of its deliveries is left to send."""
    left = conn.scalar(
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.edition_id == edition_id, DELIVERIES.c.status.in_(UNFINISHED))
        .limit(1)
    )
    if left is not None:
        return False
    result = conn.execute(
        update(EDITIONS)
        .where(EDITIONS.c.id == edition_id, EDITIONS.c.status == "sending")
        .values(status="done", finished_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def pause_if_failing(
    conn: Connection, edition_id: int, *, rate: float, window: int, now: datetime
) -> str | None:
    """Pause an edition whose permanent failures pass `rate` of its first `window` attempts.

    Returns the reason when it paused it. Only looks while the edition is within its window.
    """
    edition = (
        conn.execute(
            select(EDITIONS.c.status, EDITIONS.c.auto_pause, EDITIONS.c.total).where(
                EDITIONS.c.id == edition_id
            )
        )
    ).one_or_none()
    if edition is None or edition.status != "sending" or not edition.auto_pause:
        return None
    rows = conn.execute(
        select(DELIVERIES.c.status, func.count())
        .where(DELIVERIES.c.edition_id == edition_id, DELIVERIES.c.status.in_(("sent", "failed")))
        .group_by(DELIVERIES.c.status)
    )
    done = {status: int(count) for status, count in rows.all()}
    attempted = done.get("sent", 0) + done.get("failed", 0)
    failed = done.get("failed", 0)
    allowed = rate * min(window, max(edition.total, 1))
    if attempted > window + 1 or failed <= allowed:
        return None
    reason = (
        f"paused automatically: {failed} of the first {attempted} attempts failed permanently "
        f"(more than {rate:.0%}); check the SMTP replies, then `newsletter editions resume {edition_id}`"
    )
    return reason if pause_edition(conn, edition_id, reason) else None


def pause_edition(conn: Connection, edition_id: int, reason: str) -> bool:
    """Pause a sending edition; False when it was not sending (already paused, cancelled…)."""
    result = conn.execute(
        update(EDITIONS)
        .where(EDITIONS.c.id == edition_id, EDITIONS.c.status == "sending")
        .values(status="paused", pause_reason=reason)
    )
    return bool(getattr(result, "rowcount", 0))


# -- subscribers leaving ----------------------------------------------------------------------


async def skip_pending_for(
    session: AsyncSession,
    subscriber_id: int,
    newsletter_id: str | None = None,
    *,
    reason: str = "unsubscribed",
    now: datetime | None = None,
) -> int:
    """Mark a subscriber's not-yet-sent deliveries (of one newsletter, or all) as skipped.

    Rows already claimed by a worker ('sending') are caught by the worker's own re-check
    just before each SMTP transaction. Returns how many rows were skipped.
    """
    moment = now or utcnow()
    return await session.run_sync(
        lambda sync: _skip_pending(sync.connection(), subscriber_id, newsletter_id, reason, moment)
    )


def _skip_pending(
    conn: Connection, subscriber_id: int, newsletter_id: str | None, reason: str, now: datetime
) -> int:
    query = (
        update(DELIVERIES)
        .where(DELIVERIES.c.subscriber_id == subscriber_id, DELIVERIES.c.status.in_(PENDING))
        .values(status="skipped", last_reply=reason, updated_at=now)
    )
    if newsletter_id is not None:
        editions = select(EDITIONS.c.id).where(EDITIONS.c.newsletter_id == newsletter_id)
        query = query.where(DELIVERIES.c.edition_id.in_(editions.scalar_subquery()))
    result = conn.execute(query)
    if newsletter_id is None:
        conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.subscriber_id == subscriber_id, MESSAGES.c.status.in_(PENDING))
            .values(status="skipped", last_reply=reason)
        )
    return int(getattr(result, "rowcount", 0) or 0)
