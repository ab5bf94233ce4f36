"""What `newsletter send` shows: a bar while it sends, then the ledger's counts and why readers
were skipped."""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.cli.common import console
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.delivery import reports
from newsletter.delivery.sender import SenderStats
from newsletter.editions.builder import EMPTY_REASON
from newsletter.editions.service import EditionReport
from newsletter.states import FINAL, DeliveryStatus

# The ledger's counts the bar and the summary line name (the statuses a send ends in).
TALLY = (
    (DeliveryStatus.SENT, "sent"),
    (DeliveryStatus.SKIPPED, "skipped"),
    (DeliveryStatus.FAILED, "failed"),
    (DeliveryStatus.RETRY, "retrying"),
)
# Skip reasons as the ledger records them (one reader's), said of several readers.
SKIP_REASONS = {EMPTY_REASON: "no new articles in the sections they chose"}
# Why readers were skipped: each reason the ledger records, with how many rows.
Reasons = list[tuple[str, int]]


class SendProgress:
    """The bar of `newsletter send`: the ledger's counts when it started plus what this worker
    did since (no scan of the ledger per refresh: editions can be huge), then the ledger's own
    counts once the worker is done, which other workers may have added to."""

    def __init__(self, before: EditionReport, *, shown: bool) -> None:
        self.before = before
        self.retrying = before.counts[DeliveryStatus.RETRY]
        self.started = time.monotonic()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[tally]}"),
            TextColumn("{task.fields[rate]} msg/s · ETA {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not shown,
        )
        self.task = self.progress.add_task(
            f"edition {before.id}",
            total=before.total or 1,
            completed=_finished(before.counts),
            rate=0,
            eta="-",
            tally=said(tally(before.counts)),
        )

    def __enter__(self) -> SendProgress:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def follow(self, stats: SenderStats, retrying: int | None) -> None:
        """The worker's counts so far, and the rows retrying (None: as last known)."""
        counts = dict(self.before.counts)
        counts[DeliveryStatus.SENT] += stats.sent
        counts[DeliveryStatus.SKIPPED] += stats.skipped
        counts[DeliveryStatus.FAILED] += stats.failed
        self.retrying = self.retrying if retrying is None else retrying
        counts[DeliveryStatus.RETRY] = self.retrying
        finished = _finished(counts)
        rate = stats.sent / max(time.monotonic() - self.started, 1e-3)
        left = self.before.total - finished
        self.progress.update(
            self.task,
            completed=min(finished, self.before.total),
            tally=said(tally(counts)),
            rate=f"{rate:.0f}",
            eta=f"{left / rate:.0f}s" if rate > 0 and left > 0 else "-",
        )

    def settle(self, after: EditionReport) -> None:
        sent = after.counts[DeliveryStatus.SENT] - self.before.counts[DeliveryStatus.SENT]
        self.progress.update(
            self.task,
            completed=min(_finished(after.counts), after.total),
            tally=said(tally(after.counts)),
            rate=f"{sent / max(time.monotonic() - self.started, 1e-3):.0f}",
            eta="-",
        )


def tally(counts: dict[str, int]) -> dict[str, int]:
    """The counts the bar and the summary line name."""
    return {name: counts.get(status, 0) for status, name in TALLY}


def said(counts: dict[str, int]) -> str:
    """The counts as the bar and the summary line give them: "sent 2 · skipped 4 · …"."""
    return " · ".join(f"{name} {count}" for name, count in counts.items())


def _finished(counts: dict[str, int]) -> int:
    return sum(counts.get(status, 0) for status in FINAL)


async def retrying_now(context: AppContext, before: EditionReport, stats: SenderStats) -> int | None:
    """Rows waiting to be tried again, counted only once there can be some (the count reads the
    index on the retrying rows alone); None while the database cannot say."""
    if not before.counts[DeliveryStatus.RETRY] and not stats.retried:
        return 0
    try:
        async with context.db.engine.connect() as conn:
            conn = await conn.execution_options(**READ_ONLY)
            return await conn.run_sync(reports.status_count, before.id, DeliveryStatus.RETRY)
    except (OperationalError, DBAPIError):
        return None  # busy or away: the worker rides it out, and the bar need not stop the send


async def skip_reasons(context: AppContext, edition_id: int) -> Reasons:
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(**READ_ONLY)
        return await conn.run_sync(reports.skipped_by_reason, edition_id)
