"""One table of leased work (`deliveries` or `messages`, rows of one shape: LeasedWork) and
each statement on it, written once for both: lease, mark started, record, renew, hand back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    case,
    func,
    select,
    update,
)

from newsletter.database.compiled import Compiled
from newsletter.delivery.work import Action, Result, WorkKind
from newsletter.states import DeliveryStatus

HARD_BOUNCE = "hard"


class LeasedQueue:
    """One table of leased work and the statements on it."""

    def __init__(self, table: Table, kind: WorkKind) -> None:
        self.table = table
        self.kind = kind
        c = table.c
        self._record = Compiled(
            update(table)
            .where(
                c.id == bindparam("b_id"),
                c.lease_owner == bindparam("b_owner"),
                c.status == DeliveryStatus.LEASED,
            )
            .values(
                status=bindparam("b_status"),
                attempts=c.attempts - bindparam("b_undo"),
                last_code=bindparam("b_code"),
                last_reply=bindparam("b_reply"),
                message_id=func.coalesce(bindparam("b_message_id"), c.message_id),
                relay=func.coalesce(bindparam("b_relay"), c.relay),
                bounce=bindparam("b_bounce"),
                sent_at=bindparam("b_sent_at"),
                next_attempt_at=func.coalesce(bindparam("b_next"), c.next_attempt_at),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=bindparam("b_now"),
            )
        )
        self._mark_started = Compiled(
            update(table)
            .where(c.id == bindparam("b_id"), self.held_by(bindparam("b_owner")))
            .values(attempt_started_at=bindparam("b_now"))
        )

    def held_by(self, owner: Any) -> ColumnElement[bool]:
        held: ColumnElement[bool] = (self.table.c.lease_owner == owner) & (
            self.table.c.status == DeliveryStatus.LEASED
        )
        return held

    def lease(
        self, conn: Connection, due: Select[*tuple[Any, ...]], *, owner: str, until: datetime, now: datetime
    ) -> list[Any]:
        """Lease the rows `due` selects (one more attempt, not yet started); their key columns."""
        c = self.table.c
        returned = [c.id, c.subscriber_id, c.attempts, *self._extra_columns()]
        leased = conn.execute(
            update(self.table)
            .where(c.id.in_(due.scalar_subquery()))
            .values(
                status=DeliveryStatus.LEASED,
                lease_owner=owner,
                lease_expires_at=until,
                attempt_started_at=None,
                attempts=c.attempts + 1,
                updated_at=now,
            )
            .returning(*returned)
        )
        return list(leased)

    def _extra_columns(self) -> list[Any]:
        c = self.table.c
        return [c.variant_id] if self.kind is WorkKind.DIGEST else [c.newsletter_id]

    def mark_started(self, conn: Connection, ids: Sequence[int], *, owner: str, now: datetime) -> set[int]:
        """Note that these leased rows are about to reach SMTP; return those no longer leased by
        `owner` (expired and taken back): their bodies must not go out."""
        if not ids:
            return set()
        parameters = [{"b_id": i, "b_owner": owner, "b_now": now} for i in ids]
        if self._mark_started.executemany(conn, parameters) == len(ids):
            return set()
        held = select(self.table.c.id).where(self.table.c.id.in_(ids), self.held_by(owner))
        still = set(conn.execute(held).scalars())
        return {i for i in ids if i not in still}

    def record(self, conn: Connection, results: Sequence[Result], *, owner: str, now: datetime) -> None:
        if results:
            self._record.executemany(conn, [_parameters(result, owner, now) for result in results])

    def renew(self, conn: Connection, *, owner: str, until: datetime) -> None:
        conn.execute(update(self.table).where(self.held_by(owner)).values(lease_expires_at=until))

    def requeue(
        self, conn: Connection, *, now: datetime, expired_before: datetime | None, owners: Sequence[str]
    ) -> int:
        """Hand back leased rows. Those whose attempt had started may have been sent: they become
        due retries (claimed first, same Message-ID). The others never reached SMTP: back to the
        queue, their attempt not counted."""
        c = self.table.c
        condition = c.status == DeliveryStatus.LEASED
        if expired_before is not None:
            condition = condition & (c.lease_expires_at < expired_before)
        if owners:
            condition = condition & c.lease_owner.in_(list(owners))
        started = c.attempt_started_at.is_not(None)
        total = 0
        for subset, values in (
            (started, {"status": DeliveryStatus.RETRY, "next_attempt_at": now}),
            (
                ~started,
                {
                    "status": DeliveryStatus.QUEUED,
                    "attempts": case((c.attempts > 0, c.attempts - 1), else_=0),
                },
            ),
        ):
            done = conn.execute(
                update(self.table)
                .where(condition & subset)
                .values(**values, lease_owner=None, lease_expires_at=None)
            )
            total += int(getattr(done, "rowcount", 0) or 0)
        return total

    def owners(self, conn: Connection) -> set[str]:
        c = self.table.c
        rows = conn.execute(
            select(c.lease_owner)
            .where(c.status == DeliveryStatus.LEASED, c.lease_owner.is_not(None))
            .distinct()
        )
        return {str(owner) for owner in rows.scalars()}


def _parameters(result: Result, owner: str, now: datetime) -> dict[str, object]:
    released = result.action is Action.RELEASED
    return {
        "b_id": result.item.id,
        "b_owner": owner,
        "b_status": result.action.status,
        "b_undo": 1 if released else 0,
        "b_code": result.code,
        "b_reply": result.reply,
        "b_message_id": result.message_id,
        "b_relay": result.relay,
        "b_bounce": HARD_BOUNCE if result.hard_bounce else None,
        "b_sent_at": now if result.action is Action.SENT else None,
        "b_next": result.next_attempt_at,
        "b_now": now,
    }
