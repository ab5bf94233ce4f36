"""Delivering editions: the builder (which builds the editions whose intent was recorded) and a
delivery worker wired to the editions' lifecycle, run together.

A request handler (`POST /api/editions`) or a schedule records the intent, an edition row in
`building`; whichever process runs a worker (`serve`, `worker`, `send`) or the scheduler builds
it, so no request holds a build. Two builders on one edition are safe: the second waits for the
first's lock and finds it built.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from sqlalchemy import select

from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Edition
from newsletter.delivery.sender import SenderStats
from newsletter.delivery.worker import Worker
from newsletter.editions.builder import build_edition
from newsletter.editions.lifecycle import EditionControl
from newsletter.logs import get_logger
from newsletter.rendering import DigestRenderer
from newsletter.states import EditionStatus

log = get_logger(__name__)


def worker_for(context: AppContext, *, only: set[int] | None = None, exit_when_idle: bool = False) -> Worker:
    """A worker for every edition that is sending (or `only` these), confirmations first."""
    control = EditionControl(context.db.engine, context.settings.delivery)
    return Worker.assemble(context, control, only=only, exit_when_idle=exit_when_idle)


async def build_pending(context: AppContext, only: Iterable[int] | None = None) -> list[int]:
    """Build every edition in `building` (or those of `only`), oldest first; their ids."""
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(**READ_ONLY)
        query = select(Edition.id).where(Edition.status == EditionStatus.BUILDING).order_by(Edition.id)
        if only is not None:
            query = query.where(Edition.id.in_(list(only)))
        waiting = list((await conn.scalars(query)).all())
    renderer = DigestRenderer(context.settings)
    for edition_id in waiting:
        await build_edition(context, edition_id, renderer)
    return waiting


async def run_builder(context: AppContext, stopping: asyncio.Event) -> None:
    """Build recorded editions as they come, looking every `delivery.idle_poll_seconds`."""
    poll = context.settings.delivery.idle_poll_seconds
    while not stopping.is_set():
        try:
            await build_pending(context)
        except Exception:  # one edition's fault must not stop the builder; it is logged
            log.exception("edition.build_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=poll)


async def deliver(
    context: AppContext,
    stopping: asyncio.Event,
    *,
    only: set[int] | None = None,
    exit_when_idle: bool = False,
) -> SenderStats:
    """Build what is recorded, then deliver (building what is recorded meanwhile) until
    `stopping`, or, with `exit_when_idle`, until nothing is left to send."""
    await build_pending(context, only)
    worker = worker_for(context, only=only, exit_when_idle=exit_when_idle)
    if exit_when_idle:
        return await worker.run(stopping)
    done = asyncio.Event()
    builder = asyncio.create_task(run_builder(context, done))
    try:
        return await worker.run(stopping)
    finally:
        done.set()
        await builder


async def drain(context: AppContext, *, editions: set[int] | None = None) -> SenderStats:
    """Deliver everything due now (outbox first, then editions); return when nothing is due.

    With `editions`, return once those editions are no longer sending (waiting for their retries).
    """
    return await deliver(context, asyncio.Event(), only=editions, exit_when_idle=True)
