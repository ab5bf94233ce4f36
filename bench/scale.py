"""Scale: one edition for 10,000, 100,000 and 1,000,000 readers on SQLite and on PostgreSQL, sent
by `newsletter send` to smtp-sink: time to enqueue, peak RSS of the sender, total wall time, and
how each grows with the number of readers (linear in time, flat in memory).

    python -m bench --only scale [--quick] [--full-send]

A send that would outlast the window (WINDOW seconds after enqueueing) is stopped with SIGTERM;
its total wall time is then projected: start-up and enqueue as measured, plus total ÷ the rate
measured over the window. `--full-send` sends every edition to the end instead.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import processes
from bench.figures import Figure, at_most, ratio, skipped
from bench.ledger import EditionFigures, edition_figures, edition_started, edition_status, latest_edition
from bench.population import add_readers, populated, republish_articles
from bench.postfix import Postfix, SmtpSink, find_postfix
from bench.scratch import Scratch, postgres_missing, scratch
from newsletter.context import AppContext
from newsletter.editions.service import cancel

CASE = "scale"
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
WINDOW, QUICK_WINDOW = 15.0, 5.0
# The aim is in MB (10^6 bytes); RSS is shown in MiB, as the kernel counts it.
RSS_AIM_BYTES, SQLITE_ENQUEUE_AIM = 150_000_000, 5.0
# Growth no worse than this multiple of linear counts as linear (start-up costs make small
# editions relatively dear, so real growth is usually below 1).
LINEAR = 1.2


@dataclass(frozen=True)
class Measured:
    readers: int
    edition: EditionFigures
    run: processes.Finished
    startup_and_enqueue: float
    complete: bool

    @property
    def wall(self) -> float:
        """Measured when the send ran to the end, else projected from its rate."""
        if self.complete or not self.edition.rate:
            return self.run.seconds
        return self.startup_and_enqueue + self.edition.total / self.edition.rate


def run(quick: bool, *, full_send: bool = False) -> list[dict[str, Any]]:
    postfix = find_postfix()
    if isinstance(postfix, str):
        return [skipped(CASE, postfix)]
    sizes, window = (QUICK_SIZES, QUICK_WINDOW) if quick else (SIZES, WINDOW)
    backends = ["sqlite"] if quick else ["sqlite", "postgresql"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for backend in backends:
            missing = postgres_missing() if backend == "postgresql" else None
            if missing is not None:
                rows.append(skipped(CASE, f"{backend}: {missing}"))
                continue
            with scratch(backend, Path(tmp) / backend) as db:
                measured = asyncio.run(_grow(db, postfix, sizes, None if full_send else window))
            rows += [figure.row() for figure in _figures(backend, measured)]
    return rows


async def _grow(
    db: Scratch, postfix: Postfix, sizes: tuple[int, ...], window: float | None
) -> list[Measured]:
    measured: list[Measured] = []
    async with populated(db.settings(), 0) as context:
        readers = 0
        for size in sizes:
            await add_readers(context, size - readers)
            readers = size
            result = await _send(db, context, postfix, size, window)
            measured.append(result)
            if not result.complete and size != sizes[-1]:
                await cancel(context, result.edition.id)  # leaves no queued rows behind
    return measured


async def _send(
    db: Scratch, context: AppContext, postfix: Postfix, readers: int, window: float | None
) -> Measured:
    await republish_articles(context)
    before = await latest_edition(context) or 0
    with SmtpSink(postfix) as sink:
        spawned = datetime.now(UTC)
        sender = processes.Running(
            ("send", "--new", "--json"),
            db.env(smtp__port=str(sink.port)),
            db.folder / f"send-{readers}.log",
            db.folder,
        )
        edition_id = await _enqueued(context, before, sender)
        ended = await _sending(context, edition_id, sender, window)
        done = await asyncio.to_thread(sender.wait if ended else sender.stop, 120)
    edition = await edition_figures(context, edition_id)
    complete = edition.status == "done"
    # -15: our SIGTERM found it exiting after its worker had returned (until then `send` handles
    # the signal and stops gracefully), so with its edition done it had finished.
    if not (done.ended(0, 1) or (complete and done.returncode == -signal.SIGTERM)):
        raise RuntimeError(f"send exited {done.returncode}: {processes.tail(done.output)}")
    if complete and edition.sent != readers:
        raise RuntimeError(f"{edition.sent} of {readers} messages sent")
    assert edition.started_at is not None
    startup = (edition.started_at - spawned).total_seconds()
    return Measured(readers, edition, done, startup, complete)


async def _enqueued(context: AppContext, before: int, sender: processes.Running) -> int:
    """The new edition's id, once its deliveries are enqueued."""
    async with asyncio.timeout(600):
        while True:
            alive = sender.alive()
            latest = await latest_edition(context) or 0
            if latest > before and await edition_started(context, latest):
                return latest
            if not alive:
                raise RuntimeError(f"send ended early: {processes.tail(sender.log.read_text())}")
            sender.sample_rss()
            await asyncio.sleep(0.1)


async def _sending(
    context: AppContext, edition_id: int, sender: processes.Running, window: float | None
) -> bool:
    """Let the send run for the window (or to the end); True if it ends by itself: it has exited,
    printed its result, or sent its edition to the end (it is exiting then, and a SIGTERM would
    only interrupt its exit)."""
    deadline = None if window is None else time.monotonic() + window
    while sender.alive() and not sender.has_result():
        if deadline is not None and time.monotonic() > deadline:
            return await edition_status(context, edition_id) == "done"
        sender.sample_rss()
        await asyncio.sleep(0.25)
    return True


def _figures(backend: str, measured: list[Measured]) -> list[Figure]:
    smallest = measured[0]
    figures: list[Figure] = []
    for m in measured:
        scale = m.readers / smallest.readers
        label = f"{m.readers:,} readers, {backend}"
        linear_enqueue = _times(smallest.edition.enqueue_seconds, scale)
        enqueue_ratio = ratio(m.edition.enqueue_seconds, linear_enqueue)
        enqueue_aim = backend == "sqlite" and m.readers == SIZES[-1]
        figures.append(
            Figure(
                CASE,
                f"enqueue, {label}",
                ours=m.edition.enqueue_seconds,
                unit="s",
                baseline=linear_enqueue,
                baseline_name=f"linear from {smallest.readers:,}",
                ratio=enqueue_ratio,
                aim=f"< {SQLITE_ENQUEUE_AIM:g} s" if enqueue_aim else f"ratio ≤ {LINEAR}",
                met=at_most(m.edition.enqueue_seconds, SQLITE_ENQUEUE_AIM)
                if enqueue_aim
                else at_most(enqueue_ratio, LINEAR),
            )
        )
        rss_aim = m.readers == SIZES[-1]
        figures.append(
            Figure(
                CASE,
                f"peak RSS of `send`, {label}",
                ours=m.run.peak_rss_mib,
                unit="MiB",
                baseline=smallest.run.peak_rss_mib,
                baseline_name=f"at {smallest.readers:,}",
                ratio=ratio(m.run.peak_rss_mib, smallest.run.peak_rss_mib),
                aim=f"< {RSS_AIM_BYTES / 1e6:.0f} MB ({RSS_AIM_BYTES / processes.MIB:.0f} MiB)"
                if rss_aim
                else "",
                met=at_most(m.run.peak_rss, RSS_AIM_BYTES) if rss_aim else None,
                details=_rss_details(m),
            )
        )
        linear_wall = smallest.wall * scale
        figures.append(
            Figure(
                CASE,
                f"total wall time, {label}",
                ours=m.wall,
                unit="s",
                baseline=linear_wall,
                baseline_name=f"linear from {smallest.readers:,}",
                ratio=ratio(m.wall, linear_wall),
                aim=f"ratio ≤ {LINEAR}",
                met=at_most(ratio(m.wall, linear_wall), LINEAR),
                note=_wall_note(m),
                details=_send_details(m),
            )
        )
    return figures


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _wall_note(m: Measured) -> str:
    rate = f"{m.edition.rate:,.0f} msg/s" if m.edition.rate else "no rate"
    if m.complete:
        return f"measured: every message sent, {rate}"
    return f"projected: {m.edition.sent:,} sent in a {m.edition.sending_seconds or 0:.0f} s window at {rate}"


def _send_details(m: Measured) -> dict[str, Any]:
    return {
        "readers": m.readers,
        "sent": m.edition.sent,
        "complete": m.complete,
        "rate_msg_s": m.edition.rate,
        "startup_and_enqueue_s": round(m.startup_and_enqueue, 2),
        "process_seconds": round(m.run.seconds, 2),
    }


def _rss_details(m: Measured) -> dict[str, Any]:
    """The RSS over the run, in MiB, at about ten evenly spaced moments."""
    samples = m.run.rss_samples
    step = max(1, len(samples) // 10)
    return {"rss_mib_over_time": [(round(t, 1), round(rss / processes.MIB, 1)) for t, rss in samples[::step]]}
