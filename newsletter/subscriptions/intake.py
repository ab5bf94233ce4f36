"""A signup from the web: counted towards its client's limit and stored, where that costs least.

Through the async drivers each statement costs several event-loop round trips, more CPU than
the statement itself. So on SQLite the count and the signup run as one transaction on the ledger
thread (one hop; SQLite writes one at a time anyway), and on PostgreSQL a new address's signup is
one statement (subscriptions.oneshot) after the count, both in autocommit on one connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.ratelimit import SharedRateLimiter
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.signup import SignupRequest, sign_up, sign_up_new

T = TypeVar("T")


async def count_and_store(
    context: AppContext,
    limiter: SharedRateLimiter,
    client: str,
    wanted: SignupRequest | None,
    actor: Actor,
) -> int | None:
    """Count the request (every request counts, valid or not) and, when the limit allows it,
    store `wanted`: None when allowed, else the seconds to wait, and nothing is stored."""
    signup = _Signup(context.settings, limiter, client, wanted, actor)
    if not context.db.is_sqlite:
        async with context.db.engine.connect() as conn:
            return await signup.on_postgresql(conn)
    if context.writer is None:  # a context built by hand, without its ledger thread
        async with context.db.session() as session, session.begin():
            conn = await session.connection()
            return await conn.run_sync(signup.on_sqlite)
    return await context.writer.transaction(signup.on_sqlite)


@dataclass(frozen=True)
class _Signup:
    settings: Settings
    limiter: SharedRateLimiter
    client: str
    wanted: SignupRequest | None
    actor: Actor

    def on_sqlite(self, conn: Connection) -> int | None:
        """The count and the signup in one transaction."""
        retry_after = self.limiter.count(conn, self.client)
        if retry_after is None and self.wanted is not None:
            self._store(conn, sign_up)
        return retry_after

    async def on_postgresql(self, conn: AsyncConnection) -> int | None:
        # The count commits on its own: a busy client's row is locked for one statement only.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        async with conn.begin():  # in autocommit nothing is sent: each statement commits itself
            retry_after = await self.limiter.hit(conn, self.client)
            if retry_after is not None or self.wanted is None:
                return retry_after
            stored = await conn.run_sync(self._store, sign_up_new)
        if stored is None:  # a known or suppressed address: the general case, in a transaction
            await conn.execution_options(isolation_level=conn.default_isolation_level)
            async with conn.begin():
                await conn.run_sync(self._store, sign_up)
        return None

    def _store(self, conn: Connection, how: Callable[..., T]) -> T:
        assert self.wanted is not None
        return how(conn, settings=self.settings, request=self.wanted, actor=self.actor)
