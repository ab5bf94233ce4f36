"""An edition's progress as the console shows it live: counts, messages a second, time left."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

from newsletter.context import AppContext
from newsletter.editions import service
from newsletter.editions.service import EditionReport
from newsletter.states import DeliveryStatus, EditionStatus

# How often a watcher gets a fresh figure, and how many seconds of them the rate averages.
INTERVAL_SECONDS = 1.0
RATE_WINDOW = 5
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


async def watch(
    context: AppContext, edition_id: int, interval: float = INTERVAL_SECONDS
) -> AsyncIterator[Progress]:
    """A figure every `interval` until the edition is done or cancelled (that one included)."""
    seen: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW + 1)
    while True:
        report = await service.report(context, edition_id)
        now = time.monotonic()
        finished = sum(report.counts.get(s, 0) for s in ("sent", "failed", "skipped"))
        seen.append((now, finished))
        (then, before), (_, latest) = seen[0], seen[-1]
        rate = (latest - before) / (now - then) if now > then else 0.0
        yield progress_of(report, rate)
        if report.status in FINISHED:
            return
        await asyncio.sleep(interval)
