"""An edition's life, as one state machine: every change of `editions.status` is made here.

  ──start──▶ building ──build──▶ sending ──finish──▶ done
               │  ▲               │  ▲  ▲                 │
          pause│  │resume    pause│  │  └─────resume──────┘ (failures no server pronounced)
               ▼  │               ▼  │resume
       paused (unbuilt)        paused ───cancel──▶ cancelled   (cancel: from any but done)

Each transition is one conditional UPDATE from the states it may leave, so racing callers (two
workers, an operator and a worker) agree on what happened: the one whose UPDATE changed the row
made the transition; the others learn it from the False they get.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import cast

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from newsletter.config import DeliveryConfig
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Edition
from newsletter.delivery import reports
from newsletter.delivery.decisions import pause_reason, should_pause
from newsletter.delivery.store import LEDGER
from newsletter.states import DeliveryStatus, EditionStatus

EDITIONS = cast(Table, Edition.__table__)
CANCELLABLE = (EditionStatus.BUILDING, EditionStatus.SENDING, EditionStatus.PAUSED)


def _move(conn: Connection, edition_id: int, from_: Iterable[EditionStatus], **values: object) -> bool:
    result = conn.execute(
        update(EDITIONS)
        .where(EDITIONS.c.id == edition_id, EDITIONS.c.status.in_(list(from_)))
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


def start(
    conn: Connection,
    *,
    newsletter_id: str,
    day: date,
    sequence: int,
    trigger: str,
    since: datetime | None,
    now: datetime,
) -> int:
    """→ building: the intent to send an edition, recorded (a builder renders and enqueues it).
    IntegrityError when another process recorded the same (newsletter, day, sequence) first."""
    inserted = conn.execute(
        insert(EDITIONS)
        .values(
            newsletter_id=newsletter_id,
            edition_date=day,
            sequence=sequence,
            status=EditionStatus.BUILDING,
            trigger=trigger,
            since_at=since,
            cutoff_at=now,
            total=0,
            auto_pause=True,
            created_at=now,
        )
        .returning(EDITIONS.c.id)
    )
    return int(inserted.scalar_one())


def built(conn: Connection, edition_id: int, *, total: int, now: datetime) -> bool:
    """building → sending, once every delivery is enqueued."""
    return _move(
        conn, edition_id, (EditionStatus.BUILDING,), status=EditionStatus.SENDING, total=total, started_at=now
    )


def pause(conn: Connection, edition_id: int, reason: str) -> bool:
    """building or sending → paused, with the reason operators are shown."""
    return _move(
        conn,
        edition_id,
        (EditionStatus.BUILDING, EditionStatus.SENDING),
        status=EditionStatus.PAUSED,
        pause_reason=reason[:2000],
    )


def resume(conn: Connection, edition_id: int, *, now: datetime) -> EditionStatus | None:
    """paused → sending (it will not pause itself again; its failures no server pronounced are
    tried again), or → building when it was paused before it was ever built. done → sending
    when some of its failures were no server's verdict (tried again). None when nothing moved."""
    row = conn.execute(
        select(EDITIONS.c.started_at, EDITIONS.c.status).where(EDITIONS.c.id == edition_id)
    ).one_or_none()
    if row is None:
        return None
    if row.status == EditionStatus.DONE:
        if not LEDGER.requeue_unanswered(conn, edition_id, now=now):
            return None
        moved = _move(
            conn,
            edition_id,
            (EditionStatus.DONE,),
            status=EditionStatus.SENDING,
            finished_at=None,
            final_counts=None,
        )
        return EditionStatus.SENDING if moved else None
    unbuilt = row.started_at is None
    target = EditionStatus.BUILDING if unbuilt else EditionStatus.SENDING
    values: dict[str, object] = {"status": target, "pause_reason": None}
    if not unbuilt:
        values["auto_pause"] = False
    if not _move(conn, edition_id, (EditionStatus.PAUSED,), **values):
        return None
    if not unbuilt:
        LEDGER.requeue_unanswered(conn, edition_id, now=now)
    return target


def cancel(conn: Connection, edition_id: int, *, now: datetime) -> bool:
    """Any but done → cancelled; what is not yet sent is skipped."""
    if not _move(conn, edition_id, CANCELLABLE, status=EditionStatus.CANCELLED, finished_at=now):
        return False
    LEDGER.skip_edition(conn, edition_id, reason="edition cancelled", now=now)
    remember_counts(conn, edition_id)
    return True


def finish_if_drained(
    conn: Connection, edition_id: int, *, now: datetime, config: DeliveryConfig
) -> EditionStatus | None:
    """sending → done when none of its deliveries is left to send; → paused instead when its
    failures pass the pause policy (a worker may drain an edition before its failures are
    weighed). The new status, or None when nothing changed."""
    if reports.has_unfinished(conn, edition_id):
        return None
    if pause_if_failing(conn, edition_id, config):
        return EditionStatus.PAUSED
    done = _move(conn, edition_id, (EditionStatus.SENDING,), status=EditionStatus.DONE, finished_at=now)
    if not done:
        return None
    remember_counts(conn, edition_id)
    return EditionStatus.DONE


def remember_counts(conn: Connection, edition_id: int) -> None:
    """A finished edition's deliveries by status, kept on it: they change no more (until a resume)."""
    counts = json.dumps(reports.edition_counts(conn, edition_id), sort_keys=True)
    conn.execute(update(EDITIONS).where(EDITIONS.c.id == edition_id).values(final_counts=counts))


def pause_if_failing(conn: Connection, edition_id: int, config: DeliveryConfig) -> str | None:
    """Pause a sending edition (while it may still pause itself) whose permanent failures pass
    the configured share of its first attempts; the reason when it did."""
    edition = conn.execute(
        select(EDITIONS.c.status, EDITIONS.c.auto_pause, EDITIONS.c.total).where(EDITIONS.c.id == edition_id)
    ).one_or_none()
    if edition is None or edition.status != EditionStatus.SENDING or not edition.auto_pause:
        return None
    counts = reports.edition_counts(conn, edition_id)
    sent, failed = counts[DeliveryStatus.SENT], counts[DeliveryStatus.FAILED]
    config_rate, window = config.pause_failure_rate, config.pause_window
    if not should_pause(sent=sent, failed=failed, total=edition.total, rate=config_rate, window=window):
        return None
    replies = reports.common_replies(conn, edition_id)
    reason = pause_reason(edition_id, sent=sent, failed=failed, rate=config_rate, replies=replies)
    return reason if pause(conn, edition_id, reason) else None


def wait_on_configuration(conn: Connection, edition_ids: Sequence[int], reason: str | None) -> None:
    """Note (or, with None, clear) that these editions wait for a configuration fault to be
    fixed: their status does not change, they are sent once a worker can send them."""
    if edition_ids:
        conn.execute(
            update(EDITIONS)
            .where(EDITIONS.c.id.in_(list(edition_ids)), EDITIONS.c.status.in_(CANCELLABLE))
            .values(waiting_reason=reason[:2000] if reason else None)
        )


def sending(conn: Connection) -> list[tuple[int, str]]:
    """Editions being delivered: (id, newsletter id), oldest first."""
    rows = conn.execute(
        select(EDITIONS.c.id, EDITIONS.c.newsletter_id)
        .where(EDITIONS.c.status == EditionStatus.SENDING)
        .order_by(EDITIONS.c.id)
    )
    return [(row.id, row.newsletter_id) for row in rows]


def statuses(conn: Connection, edition_ids: Sequence[int]) -> dict[int, EditionStatus]:
    rows = conn.execute(select(EDITIONS.c.id, EDITIONS.c.status).where(EDITIONS.c.id.in_(list(edition_ids))))
    return {row.id: EditionStatus(row.status) for row in rows}


class EditionControl:
    """The lifecycle as a delivery worker drives it (see delivery.worker.Editions)."""

    def __init__(self, engine: AsyncEngine, config: DeliveryConfig) -> None:
        self.engine = engine
        self.config = config

    async def sending(self) -> list[tuple[int, str]]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**READ_ONLY)
            return await conn.run_sync(sending)

    async def statuses(self, edition_ids: Sequence[int]) -> dict[int, EditionStatus]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**READ_ONLY)
            return await conn.run_sync(statuses, edition_ids)

    async def finish_if_drained(self, edition_id: int, now: datetime) -> EditionStatus | None:
        async with self.engine.begin() as conn:
            return await conn.run_sync(finish_if_drained, edition_id, now=now, config=self.config)

    async def pause(self, edition_id: int, reason: str) -> bool:
        async with self.engine.begin() as conn:
            return await conn.run_sync(pause, edition_id, reason)

    async def wait_on_configuration(self, edition_ids: Sequence[int], reason: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(wait_on_configuration, edition_ids, reason)

    async def pause_if_failing(self, edition_id: int) -> str | None:
        async with self.engine.begin() as conn:
            return await conn.run_sync(pause_if_failing, edition_id, self.config)
