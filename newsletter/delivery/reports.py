"""What the ledger says about an edition: its rows counted by status, a page of its rows in one
status, its failures' replies. Reads only; every write is delivery.store's."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from newsletter.database.models import Delivery, Subscriber
from newsletter.states import BOUNCED_DELIVERIES, UNFINISHED, DeliveryStatus

DELIVERIES = cast(Table, Delivery.__table__)
SUBSCRIBERS = cast(Table, Subscriber.__table__)
BOUNCED = BOUNCED_DELIVERIES
# An address quoted in a reply: replaced, so that replies differing only by it count together
# (and no reader's address reaches a pause reason or a log line).
QUOTED_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")


def edition_counts(conn: Connection, edition_id: int) -> dict[str, int]:
    c = DELIVERIES.c
    rows = conn.execute(select(c.status, func.count()).where(c.edition_id == edition_id).group_by(c.status))
    counts = {status.value: 0 for status in DeliveryStatus}
    counts.update({status: int(count) for status, count in rows.all()})
    return counts


def editions_counts(conn: Connection, edition_ids: list[int]) -> dict[int, dict[str, int]]:
    """edition_counts of several editions in one statement."""
    c = DELIVERIES.c
    query = (
        select(c.edition_id, c.status, func.count())
        .where(c.edition_id.in_(edition_ids))
        .group_by(c.edition_id, c.status)
    )
    found = {edition_id: {status.value: 0 for status in DeliveryStatus} for edition_id in edition_ids}
    for edition_id, status, count in conn.execute(query).all():
        found[edition_id][status] = int(count)
    return found


def relay_activity(conn: Connection, edition_id: int) -> dict[str, dict[str, int]]:
    """What each relay carried of an edition: its rows by status, per relay."""
    c = DELIVERIES.c
    query = (
        select(c.relay, c.status, func.count())
        .where(c.edition_id == edition_id, c.relay.is_not(None))
        .group_by(c.relay, c.status)
    )
    found: dict[str, dict[str, int]] = {}
    for relay, status, count in conn.execute(query).all():
        found.setdefault(relay, {})[status] = int(count)
    return found


def latest_failures(conn: Connection, edition_id: int, limit: int) -> list[Any]:
    """An edition's latest failures (relay, code, reply, when), newest first."""
    c = DELIVERIES.c
    query = (
        select(c.relay, c.last_code, c.last_reply, c.updated_at)
        .where(c.edition_id == edition_id, c.status == DeliveryStatus.FAILED)
        .order_by(c.updated_at.desc(), c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))


def edition_deliveries(
    conn: Connection, edition_id: int, *, status: str, offset: int, limit: int
) -> tuple[int, list[Any]]:
    """One edition's rows in `status` (a DeliveryStatus, or "bounced": refused as a bounce),
    most recently changed first, with each reader's address: (how many in all, this page)."""
    c = DELIVERIES.c
    condition = c.edition_id == edition_id
    condition &= c.bounce.is_not(None) if status == BOUNCED else c.status == status
    total = int(conn.scalar(select(func.count()).select_from(DELIVERIES).where(condition)) or 0)
    page = conn.execute(
        select(
            c.id,
            c.subscriber_id,
            SUBSCRIBERS.c.email,
            c.status,
            c.attempts,
            c.last_code,
            c.last_reply,
            c.relay,
            c.bounce,
            c.updated_at,
        )
        .join(SUBSCRIBERS, SUBSCRIBERS.c.id == c.subscriber_id)
        .where(condition)
        .order_by(c.updated_at.desc(), c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return total, list(page)


def failure_replies(conn: Connection, edition_id: int) -> list[tuple[int | None, str | None]]:
    """The (code, reply) of each of an edition's failed rows."""
    c = DELIVERIES.c
    rows = conn.execute(
        select(c.last_code, c.last_reply).where(c.edition_id == edition_id, c.status == DeliveryStatus.FAILED)
    )
    return [(row.last_code, row.last_reply) for row in rows]


def status_count(conn: Connection, edition_id: int, status: DeliveryStatus) -> int:
    c = DELIVERIES.c
    query = select(func.count()).select_from(DELIVERIES)
    return int(conn.scalar(query.where(c.edition_id == edition_id, c.status == status)) or 0)


def skipped_by_reason(conn: Connection, edition_id: int) -> list[tuple[str, int]]:
    """An edition's skipped rows counted by the reason recorded with each, most first."""
    c = DELIVERIES.c
    count = func.count().label("count")
    rows = conn.execute(
        select(c.last_reply, count)
        .where(c.edition_id == edition_id, c.status == DeliveryStatus.SKIPPED)
        .group_by(c.last_reply)
        .order_by(count.desc(), c.last_reply)
    )
    return [(reason or "no reason recorded", int(n)) for reason, n in rows.all()]


def has_unfinished(conn: Connection, edition_id: int) -> bool:
    c = DELIVERIES.c
    left = conn.scalar(select(c.id).where(c.edition_id == edition_id, c.status.in_(UNFINISHED)).limit(1))
    return left is not None


def common_replies(conn: Connection, edition_id: int, *, limit: int = 3) -> list[tuple[str, int]]:
    """The `limit` most frequent replies of an edition's failed rows, each with its count; the
    counts add up to the failed rows when there are no more than `limit` kinds. A stored reply
    carries its code ("550 5.1.1 …"); a row with none is named by its code alone."""
    counted = Counter(
        without_addresses(reply or (str(code) if code else "no reply"))
        for code, reply in failure_replies(conn, edition_id)
    )
    return counted.most_common(limit)


def without_addresses(reply: str) -> str:
    """A reply with each quoted address replaced by <address>."""
    return QUOTED_ADDRESS.sub("<address>", reply)
