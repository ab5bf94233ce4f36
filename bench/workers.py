"""Multi-worker: 1, 2 and 4 `newsletter worker` processes on one PostgreSQL edition of 200,000
readers, each held to `smtp.rate_limit` messages a second so that SMTP is the bottleneck:
throughput should grow with the workers, and no message may go twice.

    python -m bench --only workers [--quick]

The sink is aiosmtpd (tests/support/smtp.py) in a process of its own, keeping each message's
recipients and Message-ID only. The configurations run one after another on the same edition
(each stopped with SIGTERM, leaving its claimed work to the next), and each is timed over a
window that opens once its workers are warm. At the end every recipient must have arrived at
most once, and exactly as many messages as the ledger says were sent.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import Envelope

from bench import processes
from bench.figures import Figure, at_least, ratio, skipped
from bench.ledger import sent_count
from bench.population import populated
from bench.scratch import Scratch, postgres_missing, scratch
from newsletter.editions.service import start_edition
from tests.support.smtp import Mailbox, Received, SmtpServer

CASE = "workers"
# Messages a second per worker: low enough that four workers, PostgreSQL and the aiosmtpd sink
# leave one of the two cores idle. The sink reads DATA line by line: 0.7 ms of CPU a 40 KB
# message on a fast machine, 2.2 ms on a slower one (~460 msg/s with a core to itself), so at
# 100 a second four workers measured the sink there (0.55-0.63 of the limit), not themselves.
RATE = 50
SHARE_AIM = 0.85  # each configuration reaches this share of workers × RATE: linear growth
STARTED = "service.started"  # logged by each worker once it is ready to claim
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Plan:
    readers: int
    workers: tuple[int, ...]
    warmup: float
    window: float


# warmup: seconds after every worker has started before the window opens.
FULL = Plan(200_000, (1, 2, 4), warmup=5.0, window=15.0)
QUICK = Plan(20_000, (1, 2), warmup=2.0, window=5.0)


class MessageIds(Mailbox):
    """Keeps who each message went to and its Message-ID, not its 40 KB of content."""

    def _keep(self, envelope: Envelope) -> None:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        found = _MESSAGE_ID.search(content)
        header = b"Message-ID: " + found.group(1) if found else b""
        received = Received(str(envelope.mail_from), list(envelope.rcpt_tos), header)
        self._received.append(received)
        self._publish("received", received)


@dataclass(frozen=True)
class Window:
    workers: int
    rate: float


def run(quick: bool) -> list[dict[str, Any]]:
    missing = postgres_missing()
    if missing is not None:
        return [skipped(CASE, missing)]
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp, scratch("postgresql", Path(tmp)) as db:
        return asyncio.run(_run(db, plan))


async def _run(db: Scratch, plan: Plan) -> list[dict[str, Any]]:
    sink = SmtpServer(MessageIds())
    async with populated(db.settings(), plan.readers) as context:
        edition = await start_edition(context, "daily")
        sink.start()
        try:
            windows = [await _window(db, sink, n, plan) for n in plan.workers]
        finally:
            sink.stop()
        sent = await sent_count(context, edition.id)
    return [f.row() for f in _figures(windows, sink.handler, sent)]


async def _window(db: Scratch, sink: SmtpServer, workers: int, plan: Plan) -> Window:
    env = db.env(smtp__port=str(sink.port), smtp__rate_limit=str(RATE))
    running = [
        processes.Running(("worker",), env, db.folder / f"workers-{workers}-{n}.log", db.folder)
        for n in range(workers)
    ]
    try:
        await _started(running)
        await asyncio.sleep(plan.warmup)
        first, opened = sink.handler.count(), time.monotonic()
        await asyncio.sleep(plan.window)
        last, closed = sink.handler.count(), time.monotonic()
    finally:
        stopped = await asyncio.gather(*(asyncio.to_thread(r.stop) for r in running))
    failed = [s for s in stopped if s.returncode != 0]
    if failed:
        raise RuntimeError(f"a worker exited {failed[0].returncode}: {processes.tail(failed[0].output)}")
    return Window(workers, (last - first) / (closed - opened))


async def _started(running: list[processes.Running]) -> None:
    """Until every worker has opened its database and begun (they start at once, so on two cores
    the imports of four take several seconds)."""
    async with asyncio.timeout(120):
        while not all(STARTED in worker.log.read_text() for worker in running):
            dead = [worker for worker in running if not worker.alive()]
            if dead:
                raise RuntimeError(f"a worker died: {processes.tail(dead[0].log.read_text())}")
            await asyncio.sleep(0.1)


def _figures(windows: list[Window], handler: Mailbox, sent: int) -> list[Figure]:
    one = windows[0].rate
    figures = [
        Figure(
            CASE,
            f"{w.workers} `worker` process{'es' if w.workers > 1 else ''}, PostgreSQL",
            ours=w.rate,
            unit="msg/s",
            baseline=float(w.workers * RATE),
            baseline_name=f"{w.workers} × smtp.rate_limit {RATE}",
            ratio=ratio(w.rate, w.workers * RATE),
            aim=f"≥ {SHARE_AIM}",
            met=at_least(ratio(w.rate, w.workers * RATE), SHARE_AIM),
            note=f"{w.rate / one:.2f}× one worker",
        )
        for w in windows
    ]
    received = Counter(r for m in handler.messages() for r in m.rcpt_tos)
    twice = sum(n - 1 for n in received.values() if n > 1)
    total = sum(received.values())
    figures.append(
        Figure(
            CASE,
            "messages that went twice",
            ours=float(twice),
            unit="",
            baseline=float(total),
            baseline_name="messages received",
            aim="0, and received = ledger's sent",
            met=twice == 0 and total == sent,
            note=f"ledger: {sent:,} sent; sink: {total:,} received, {len(received):,} recipients",
            details={"sent_in_ledger": sent, "received": total, "recipients": len(received)},
        )
    )
    return figures
