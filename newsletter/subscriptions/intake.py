"""A signup from the web: counted towards its client's limit and stored, where that costs least.

Through the async drivers each statement costs several event-loop round trips, more CPU than
the statement itself. So on SQLite the count and the signup run as one transaction on the ledger
thread (one hop; SQLite writes one at a time anyway), and on PostgreSQL a new address's signup is
one statement (subscriptions.oneshot) after the count, both in autocommit on one connection.
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.ratelimit import SharedRateLimiter
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.signup import SignupRequest, sign_up, sign_up_new


async def count_and_store(
    context: AppContext,
    limiter: SharedRateLimiter,
    client: str,
    wanted: SignupRequest | None,
    actor: Actor,
) -> int | None:
    """Count the request (every request counts, valid or not) and, when the limit allows it,
    store `wanted`: None when allowed, else the seconds to wait, and nothing is stored."""
    settings = context.settings
    if not context.db.is_sqlite:
        async with context.db.engine.connect() as conn:
            return await _on_postgresql(conn, settings, limiter, client, wanted, actor)
    if context.writer is None:  # a context built by hand, without its ledger thread
        async with context.db.session() as session, session.begin():
            conn = await session.connection()
            return await conn.run_sync(_count_and_sign_up, settings, limiter, client, wanted, actor)
    return await context.writer.transaction(
        lambda conn: _count_and_sign_up(conn, settings, limiter, client, wanted, actor)
    )


def _count_and_sign_up(
    conn: Connection,
    settings: Settings,
    limiter: SharedRateLimiter,
    client: str,
    wanted: SignupRequest | None,
    actor: Actor,
) -> int | None:
    """SQLite: the count and the signup in one transaction."""
    retry_after = limiter.count(conn, client)
    if retry_after is None and wanted is not None:
        sign_up(conn, settings=settings, request=wanted, actor=actor)
    return retry_after


async def _on_postgresql(
    conn: AsyncConnection,
    settings: Settings,
    limiter: SharedRateLimiter,
    client: str,
    wanted: SignupRequest | None,
    actor: Actor,
) -> int | None:
    # The count commits on its own: a busy client's row is locked for one statement only.
    await conn.execution_options(isolation_level="AUTOCOMMIT")
    async with conn.begin():  # in autocommit nothing is sent: each statement commits itself
        retry_after = await limiter.hit(conn, client)
        if retry_after is not None or wanted is None:
            return retry_after
        stored = await conn.run_sync(
            lambda sync: sign_up_new(sync, settings=settings, request=wanted, actor=actor)
        )
    if stored is None:  # a known or suppressed address: the general case, in a transaction
        await conn.execution_options(isolation_level=conn.default_isolation_level)
        async with conn.begin():
            await conn.run_sync(lambda sync: sign_up(sync, settings=settings, request=wanted, actor=actor))
    return None
