"""The ledger as one delivery worker uses it: claims on the process's async connection, outcomes
written on the worker's ledger thread (one hop per group), leases, and the bounce policy applied
in the same transaction as the bounces."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Connection

from newsletter.config import DatabaseConfig, DeliveryConfig
from newsletter.database.engine import Database
from newsletter.database.models import utcnow
from newsletter.database.writer import LedgerWriter
from newsletter.delivery.decisions import becomes_bounced
from newsletter.delivery.store import LEDGER
from newsletter.delivery.work import Result, WorkItem, WorkKind
from newsletter.logs import get_logger

log = get_logger(__name__)


class Store(Protocol):
    """What a worker needs of the ledger; WorkerStore is the real one, over the database."""

    owner: str

    async def claim(self, editions: Sequence[tuple[int, str]], *, limit: int) -> list[WorkItem]: ...

    async def record(
        self, results: Sequence[Result], started: Sequence[WorkItem]
    ) -> set[tuple[WorkKind, int]]:
        """Commit outcomes and mark attempts started, in one transaction; the started rows no
        longer leased to this worker come back."""
        ...

    async def renew(self) -> None: ...

    async def sweep(self) -> int:
        """Hand back every worker's expired leases."""
        ...

    async def lease_owners(self) -> list[str]: ...

    async def reclaim(self, owners: Sequence[str]) -> int: ...

    async def close(self) -> None: ...


class WorkerStore:
    def __init__(
        self, db: Database, database: DatabaseConfig, *, owner: str, lease: timedelta, config: DeliveryConfig
    ) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease
        self.config = config
        self._writer = LedgerWriter(database, db.foreground, relaxed_durability=True)

    async def claim(self, editions: Sequence[tuple[int, str]], *, limit: int) -> list[WorkItem]:
        """Confirmations first, then the editions in order, up to `limit` in all."""
        now = utcnow()
        async with self.db.engine.begin() as conn:
            items = await conn.run_sync(
                LEDGER.claim_confirmations, owner=self.owner, limit=limit, now=now, lease=self.lease
            )
            for edition in editions:
                if len(items) >= limit:
                    break
                items += await conn.run_sync(
                    LEDGER.claim_digests,
                    edition,
                    owner=self.owner,
                    limit=limit - len(items),
                    now=now,
                    lease=self.lease,
                )
        return items

    async def record(
        self, results: Sequence[Result], started: Sequence[WorkItem]
    ) -> set[tuple[WorkKind, int]]:
        now = utcnow()
        threshold = self.config.bounce_threshold
        # A start mark guards a message whose outcome is not yet written; one whose outcome is in
        # this same transaction needs none (and, written after it, would find its lease gone).
        decided = {(result.item.kind, result.item.id) for result in results}
        started = [item for item in started if (item.kind, item.id) not in decided]

        def write(conn: Connection) -> tuple[list[int], set[tuple[WorkKind, int]]]:
            bounces = LEDGER.record(conn, results, owner=self.owner, now=now)
            counts = LEDGER.count_hard_bounces(conn, bounces, now=now)
            bounced = sorted(i for i, count in counts.items() if becomes_bounced(count, threshold))
            LEDGER.mark_bounced(conn, bounced, now=now)
            lost = LEDGER.mark_started(conn, started, owner=self.owner, now=now) if started else set()
            return bounced, lost

        # Worker crashes lose nothing committed with relaxed durability (this writer's commits do
        # not wait for the WAL flush); only a PostgreSQL server crash could forget the last
        # moments of outcomes, and those messages would go again.
        bounced, lost = await self._writer.transaction(write)
        if bounced:
            log.info("subscribers.bounced", subscribers=len(bounced))
        return lost

    async def renew(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.run_sync(LEDGER.renew, owner=self.owner, until=utcnow() + self.lease)

    async def sweep(self) -> int:
        async with self.db.engine.begin() as conn:
            return await conn.run_sync(LEDGER.requeue_expired, now=utcnow())

    async def lease_owners(self) -> list[str]:
        async with self.db.engine.begin() as conn:
            return await conn.run_sync(LEDGER.lease_owners)

    async def reclaim(self, owners: Sequence[str]) -> int:
        async with self.db.engine.begin() as conn:
            return await conn.run_sync(LEDGER.requeue_owners, owners, now=utcnow())

    async def close(self) -> None:
        await self._writer.close()
