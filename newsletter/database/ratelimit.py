"""Requests per client, counted in the database so that every web process on every machine sees
the same counts (a limit kept in each process's memory let N processes admit N times as much).

A sliding window, approximated from two fixed ones: the previous window's count weighted by how
much of it the sliding window still covers, plus the current one's. A refused request is not
counted, so a client that keeps knocking waits no longer than one that waits. Increments are
conditional in the database, so clients racing on several machines cannot overshoot the limit.
Clients are stored as keyed hashes, never as addresses.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from newsletter.database.engine import Database
from newsletter.database.models import RateLimitWindow
from newsletter.database.upsert import insert_for

_TABLE = cast(Table, RateLimitWindow.__table__)
_WINDOWS = select(_TABLE.c.window_start, _TABLE.c.hits).where(
    _TABLE.c.bucket == bindparam("bucket"),
    _TABLE.c.window_start.in_(bindparam("starts", expanding=True)),
)


@functools.cache
def _count_hit(dialect: str) -> ReturningInsert[int]:
    """One statement: one more hit in the current window unless that would pass the limit with
    what the previous window carries; no row comes back when it would."""
    previous = _TABLE.alias("previous")
    carried = func.coalesce(
        select(previous.c.hits)
        .where(previous.c.bucket == bindparam("bucket"), previous.c.window_start == bindparam("previous"))
        .scalar_subquery(),
        0,
    ) * bindparam("covered", type_=Float)
    limit = bindparam("limit", type_=Integer)
    first = select(
        bindparam("bucket", type_=String), bindparam("start", type_=BigInteger), literal(1, Integer)
    ).where(carried + 1 <= limit)
    statement = insert_for(dialect, _TABLE).from_select(["bucket", "window_start", "hits"], first)
    statement = statement.on_conflict_do_update(
        index_elements=["bucket", "window_start"],
        set_={"hits": _TABLE.c.hits + 1},
        where=_TABLE.c.hits + 1 + carried <= limit,
    )
    return statement.returning(_TABLE.c.hits)


class SharedRateLimiter:
    """`limit` requests per `window_seconds` per client, for one named purpose ("signup")."""

    def __init__(
        self,
        purpose: str,
        limit: int,
        *,
        key: str,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.purpose = purpose
        self.limit = limit
        self.window = window_seconds
        self._key = hashlib.sha256(b"rate-limit\0" + key.encode("utf-8")).digest()
        self._clock = clock

    def bucket(self, client: str) -> str:
        digest = hmac.new(self._key, client.encode("utf-8", "replace"), "sha256").hexdigest()[:32]
        return f"{self.purpose}:{digest}"

    async def hit(self, conn: AsyncConnection, client: str) -> int | None:
        """Count one request. None when allowed; else the whole seconds to wait (for
        Retry-After), and nothing is counted. One statement when allowed.

        On PostgreSQL a connection in autocommit is best: inside a longer transaction the row
        of a busy client stays locked until that transaction ends, queueing its requests."""
        return await conn.run_sync(self.count, client)

    def count(self, conn: Connection, client: str) -> int | None:
        """`hit` on a synchronous connection (a ledger thread's, inside its transaction)."""
        now = self._clock()
        start = int(now // self.window) * self.window
        covered = 1 - (now - start) / self.window
        parameters = {
            "bucket": self.bucket(client), "start": start, "previous": start - self.window,
            "covered": covered, "limit": self.limit,
        }  # fmt: skip
        if conn.scalar(_count_hit(conn.dialect.name), parameters) is not None:
            return None
        rows = conn.execute(
            _WINDOWS, {"bucket": parameters["bucket"], "starts": [start, start - self.window]}
        )
        return self._wait(now, start, {row.window_start: row.hits for row in rows}, covered)

    async def waiting(self, conn: AsyncConnection, client: str) -> int | None:
        """Whole seconds until one more request would be allowed, counting none; None: now."""
        now = self._clock()
        start = int(now // self.window) * self.window
        covered = 1 - (now - start) / self.window
        rows = await conn.execute(
            _WINDOWS, {"bucket": self.bucket(client), "starts": [start, start - self.window]}
        )
        hits = {row.window_start: row.hits for row in rows}
        if hits.get(start, 0) + 1 + hits.get(start - self.window, 0) * covered <= self.limit:
            return None
        return self._wait(now, start, hits, covered)

    def _wait(self, now: float, start: int, hits: dict[int, int], covered: float) -> int:
        """Seconds until one more request fits: the previous window's share fades linearly."""
        current = hits.get(start, 0)
        previous = hits.get(start - self.window, 0)
        if current + 1 > self.limit or previous == 0:
            return max(1, math.ceil(start + self.window - now))
        # carried(t) = previous * (covered - t / window) must fall to limit - 1 - current.
        room = self.limit - 1 - current
        fade = (previous * covered - room) / previous * self.window
        return max(1, math.ceil(fade))


async def forget_windows(conn: AsyncConnection, *, before: datetime, window_seconds: int = 60) -> int:
    """Delete the windows no limit looks at any more (older than two windows before `before`)."""
    oldest = int(before.timestamp()) - 2 * window_seconds
    result = await conn.execute(delete(RateLimitWindow).where(RateLimitWindow.window_start < oldest))
    return int(getattr(result, "rowcount", 0) or 0)


async def count_request(
    limiter: SharedRateLimiter, db: Database, within: AsyncSession, client: str
) -> int | None:
    """`limiter.hit` where it costs least: on SQLite inside the caller's transaction (one writer
    at a time anyway: no extra BEGIN and COMMIT), on PostgreSQL on a connection of its own in
    autocommit, so a busy client's row is locked for one statement, not a whole signup."""
    if db.is_sqlite:
        return await limiter.hit(await within.connection(), client)
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await limiter.hit(conn, client)
