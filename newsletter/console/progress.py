"""An edition's progress as the console shows it live: counts, messages a second, time left."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from sqlalchemy import Connection, Engine

from newsletter.console.snapshots import Snapshots
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.delivery import reports
from newsletter.editions import service
from newsletter.editions.service import EditionReport, LiveCounts
from newsletter.states import FINAL, DeliveryStatus, EditionStatus

T = TypeVar("T")
# How often a watcher gets a fresh figure, and how many seconds of them the rate averages.
INTERVAL_SECONDS = 1.0
RATE_WINDOW = 5
LIVE_SECONDS = 1.0
FINISHED = (EditionStatus.DONE, EditionStatus.CANCELLED)


@dataclass(frozen=True)
class Progress:
    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    retrying: int
    waiting: int  # queued, or held by a worker right now
    done_share: float  # 0..1 of the total that is finished (sent, failed or skipped)
    per_second: float
    eta_seconds: int | None
    pause_reason: str | None
    waiting_reason: str | None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def progress_of(report: EditionReport, per_second: float) -> Progress:
    counts = report.counts
    sent, failed = counts.get(DeliveryStatus.SENT, 0), counts.get(DeliveryStatus.FAILED, 0)
    skipped, retrying = counts.get(DeliveryStatus.SKIPPED, 0), counts.get(DeliveryStatus.RETRY, 0)
    waiting = counts.get(DeliveryStatus.QUEUED, 0) + counts.get(DeliveryStatus.LEASED, 0)
    total = max(report.total, sum(counts.values()))
    finished = sent + failed + skipped
    left = total - finished
    eta = round(left / per_second) if per_second > 0 and left > 0 else None
    return Progress(
        status=report.status,
        total=total,
        sent=sent,
        failed=failed,
        skipped=skipped,
        retrying=retrying,
        waiting=waiting,
        done_share=finished / total if total else 0.0,
        per_second=round(per_second, 1),
        eta_seconds=eta,
        pause_reason=report.pause_reason,
        waiting_reason=report.waiting_reason,
    )


async def read_apart(context: AppContext, engine: Engine | None, work: Callable[[Connection], T]) -> T:
    """Run `work` (a costly read) on a connection that pages do not wait for: with `engine`
    (SQLite, whose pages share one connection), on a thread and a connection of its own."""
    if engine is not None:
        return await asyncio.to_thread(_read_on, engine, work)
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(**READ_ONLY)
        return await conn.run_sync(work)


def _read_on(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        reading = conn.execution_options(**READ_ONLY)
        with reading.begin():
            return work(reading)


def live_counts(context: AppContext, snapshots: Snapshots, engine: Engine | None = None) -> LiveCounts:
    """An unfinished edition's counts at most LIVE_SECONDS old, shared by every page and watcher
    of this process (a million rows are counted about once a second, not once a request), read
    apart from the pages (see read_apart)."""

    async def counts(edition_id: int) -> dict[str, int]:
        work = functools.partial(reports.edition_counts, edition_id=edition_id)
        found: dict[str, int] = await snapshots.get(
            ("edition-counts", edition_id), lambda: read_apart(context, engine, work), LIVE_SECONDS
        )
        return found

    return counts


async def watch(
    context: AppContext, edition_id: int, live: LiveCounts | None = None, interval: float = INTERVAL_SECONDS
) -> AsyncIterator[Progress]:
    """A figure every `interval` until the edition is done or cancelled (that one included)."""
    seen: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW + 1)
    while True:
        report = await service.report(context, edition_id, live=live)
        now = time.monotonic()
        finished = sum(report.counts.get(s, 0) for s in FINAL)
        seen.append((now, finished))
        (then, before), (_, latest) = seen[0], seen[-1]
        rate = (latest - before) / (now - then) if now > then else 0.0
        yield progress_of(report, rate)
        if report.status in FINISHED:
            return
        await asyncio.sleep(interval)
