"""Delivery: messages per second from `newsletter send` (and from two `newsletter worker` processes)
to postfix's smtp-sink on loopback, against postfix's smtp-source sending as many messages of
the same size over as many reused connections to the same sink: the ceiling on this machine.

    python -m bench --only delivery [--quick]

Ours is the edition's SMTP phase read from the ledger (see bench/ledger.py); smtp-source is timed
by the wall clock and, in full mode, run just before and just after ours (the mean is the ceiling).
On SQLite the 8-connection send runs twice more with DKIM (RSA-2048, then Ed25519), against the
unsigned one.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import processes
from bench.cpu import CoresBusy
from bench.figures import Figure, at_least, at_most, ratio, skipped
from bench.ledger import EditionFigures, edition_figures, edition_status, latest_edition
from bench.population import populated, republish_articles
from bench.postfix import Postfix, SmtpSink, SourceRun, find_postfix, smtp_source
from bench.render import SIGNED_ED25519, SIGNED_RSA, dkim_settings
from bench.scratch import Scratch, postgres_missing, scratch
from newsletter.context import AppContext
from newsletter.editions.service import start_edition

CASE = "delivery"
ONE_PROCESS = ((1, 0.6), (8, 0.6), (32, 0.35))  # connections, aim (share of the ceiling)
WORKERS, WORKER_CONNECTIONS, WORKERS_AIM = 2, 8, 0.5
SIGNED_CONNECTIONS, SIGNED_AIM = 8, 0.8  # a signed send: at least this share of the unsigned one
SIGNED_KINDS = {SIGNED_RSA: "RSA-2048", SIGNED_ED25519: "Ed25519"}  # bench.render's key kinds
CPU_CONNECTIONS, CPU_AIM_MS = 8, 0.25  # our CPU per message (start-up included) at this many
TIMEOUT = 300


@dataclass(frozen=True)
class Setup:
    scratch: Scratch
    context: AppContext
    postfix: Postfix
    messages: int
    size: int
    bracket: bool


def run(quick: bool) -> list[dict[str, Any]]:
    postfix = find_postfix()
    if isinstance(postfix, str):
        return [skipped(CASE, postfix)]
    messages = 2_000 if quick else 20_000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        rows += asyncio.run(_sqlite(Path(tmp) / "sqlite", postfix, messages, bracket=not quick))
        missing = postgres_missing()
        if missing is not None:
            rows.append(skipped(CASE, f"PostgreSQL rows: {missing}"))
        else:
            rows += asyncio.run(_postgresql(Path(tmp) / "postgresql", postfix, messages, bracket=not quick))
    return rows


async def _sqlite(folder: Path, postfix: Postfix, messages: int, *, bracket: bool) -> list[dict[str, Any]]:
    with scratch("sqlite", folder) as db:
        async with populated(db.settings(), messages) as context:
            setup = Setup(db, context, postfix, messages, await message_bytes(db), bracket)
            figures = [await _one_process(setup, c, aim) for c, aim in ONE_PROCESS]
            unsigned = next(f for f in figures if f.details["connections"] == SIGNED_CONNECTIONS)
            figures += [await _signed_send(setup, unsigned, signed) for signed in SIGNED_KINDS]
            figures.append(
                _cpu_per_message(next(f for f in figures if f.details["connections"] == CPU_CONNECTIONS))
            )
            return [figure.row() for figure in figures]


async def _postgresql(
    folder: Path, postfix: Postfix, messages: int, *, bracket: bool
) -> list[dict[str, Any]]:
    with scratch("postgresql", folder) as db:
        async with populated(db.settings(), messages) as context:
            setup = Setup(db, context, postfix, messages, await message_bytes(db), bracket)
            one = await _one_process(setup, WORKERS * WORKER_CONNECTIONS, 0.35)
            two = await _worker_processes(setup, WORKERS, WORKER_CONNECTIONS)
            return [one.row(), two.row()]


async def message_bytes(db: Scratch) -> int:
    """The size of our message, as `newsletter send --dry-run --json` reports it."""
    done = await asyncio.to_thread(
        processes.run, ("send", "--dry-run", "--json"), db.env(), db.folder / "dry-run.log", db.folder, 120
    )
    if not done.ended(0):
        raise RuntimeError(f"send --dry-run failed: {processes.tail(done.output)}")
    planned = json.loads(done.output[done.output.index("[") :])
    return int(planned[0]["message_bytes"])


@dataclass(frozen=True)
class Ours:
    """A sending run of ours: its CPU time (start-up and enqueue included) and how busy all the
    cores were meanwhile."""

    cpu_seconds: float
    cores_busy: float | None
    peak_rss_mib: float | None = None


async def _ceiling(setup: Setup, port: int, connections: int) -> SourceRun:
    return await asyncio.to_thread(
        smtp_source, setup.postfix, port, messages=setup.messages, size=setup.size, connections=connections
    )


async def _signed_send(setup: Setup, unsigned: Figure, kind: str) -> Figure:
    """The same `send` as `unsigned`, each message DKIM-signed with `kind`'s key: what signing
    costs a send, against the unsigned send of this run."""
    settings = {"domain": "londondaily.example", **dkim_settings(setup.scratch.folder)[kind]}
    dkim = {
        f"dkim__{name}": json.dumps(value) if isinstance(value, list) else str(value)
        for name, value in settings.items()
    }
    signed = await _one_process(setup, SIGNED_CONNECTIONS, SIGNED_AIM, **dkim)
    share = ratio(signed.ours, unsigned.ours)
    return Figure(
        CASE,
        f"`send`, {SIGNED_CONNECTIONS} connections, DKIM {SIGNED_KINDS[kind]}, {setup.scratch.backend}",
        ours=signed.ours,
        unit="msg/s",
        baseline=unsigned.ours,
        baseline_name="the same send unsigned, this run",
        ratio=share,
        aim=f"≥ {SIGNED_AIM}",
        met=at_least(share, SIGNED_AIM),
        note=signed.note,
        details=signed.details,
    )


def _cpu_per_message(send: Figure) -> Figure:
    """The CPU a message costs us (the whole `send` process, start-up and enqueue included)
    against what smtp-source spends on one."""
    ours, theirs = send.details["ours_cpu_ms_per_message"], send.details["smtp_source_cpu_ms_per_message"]
    return Figure(
        CASE,
        f"CPU per message, `send`, {CPU_CONNECTIONS} connections, {send.what.rsplit(', ', 1)[-1]}",
        ours=ours,
        unit="ms",
        baseline=theirs,
        baseline_name="smtp-source's, same run",
        ratio=ratio(ours, theirs),
        aim=f"≤ {CPU_AIM_MS} ms",
        met=at_most(ours, CPU_AIM_MS),
        note=f"{send.details['messages']:,} messages; start-up and enqueue included",
    )


async def _one_process(setup: Setup, connections: int, aim: float, **more_env: str) -> Figure:
    db = setup.scratch
    await republish_articles(setup.context)
    with SmtpSink(setup.postfix) as sink:
        sources = [await _ceiling(setup, sink.port, connections)] if setup.bracket else []
        env = db.env(smtp__port=str(sink.port), smtp__concurrency=str(connections), **more_env)
        log = db.folder / f"send-{connections}.log"
        with CoresBusy() as busy:
            done = await asyncio.to_thread(
                processes.run, ("send", "--new", "--json"), env, log, db.folder, TIMEOUT
            )
        sources.append(await _ceiling(setup, sink.port, connections))
    if not done.ended(0):
        raise RuntimeError(f"send exited {done.returncode}: {processes.tail(done.output)}")
    edition = await edition_figures(setup.context, await _latest(setup.context))
    what = f"`send`, {connections} connection{'s' if connections > 1 else ''}, {db.backend}"
    ours = Ours(done.cpu_seconds, busy.share, done.peak_rss_mib)
    return _figure(setup, what, edition, sources, connections, aim, ours)


async def _worker_processes(setup: Setup, workers: int, connections: int) -> Figure:
    db = setup.scratch
    await republish_articles(setup.context)
    edition = await start_edition(setup.context, "daily", new=True)
    total = workers * connections
    with SmtpSink(setup.postfix) as sink:
        sources = [await _ceiling(setup, sink.port, total)] if setup.bracket else []
        env = db.env(smtp__port=str(sink.port), smtp__concurrency=str(connections))
        with CoresBusy() as busy:
            running = [
                processes.Running(("worker",), env, db.folder / f"worker-{n}.log", db.folder)
                for n in range(workers)
            ]
            try:
                await _until_done(setup.context, edition.id, running)
            finally:
                stopped = await asyncio.gather(*(asyncio.to_thread(r.stop) for r in running))
        sources.append(await _ceiling(setup, sink.port, total))
    figures = await edition_figures(setup.context, edition.id)
    what = f"{workers} `worker` processes × {connections} connections, {db.backend}"
    ours = Ours(sum(s.cpu_seconds for s in stopped), busy.share)
    return _figure(setup, what, figures, sources, total, WORKERS_AIM, ours)


async def _until_done(context: AppContext, edition_id: int, running: list[processes.Running]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while await edition_status(context, edition_id) != "done":
            for worker in running:
                if not worker.alive():
                    raise RuntimeError(f"a worker died: {processes.tail(worker.log.read_text())}")
            await asyncio.sleep(0.2)


async def _latest(context: AppContext) -> int:
    edition_id = await latest_edition(context)
    assert edition_id is not None
    return edition_id


def _figure(
    setup: Setup,
    what: str,
    edition: EditionFigures,
    sources: list[SourceRun],
    connections: int,
    aim: float,
    ours: Ours,
) -> Figure:
    if edition.sent != setup.messages:
        raise RuntimeError(f"{what}: {edition.sent} of {setup.messages} messages sent")
    ceiling = sum(setup.messages / s.seconds for s in sources) / len(sources)
    share = ratio(edition.rate, ceiling)
    ours_cpu = 1000 * ours.cpu_seconds / setup.messages
    source_cpu = 1000 * sum(s.cpu_seconds for s in sources) / len(sources) / setup.messages
    busy = f"; cores busy {ours.cores_busy:.0%}" if ours.cores_busy is not None else ""
    return Figure(
        CASE,
        what,
        ours=edition.rate,
        unit="msg/s",
        baseline=ceiling,
        baseline_name=f"smtp-source -s {connections}",
        ratio=share,
        aim=f"≥ {aim}",
        met=at_least(share, aim),
        note=f"{setup.messages:,} × {setup.size:,} B; CPU/msg {ours_cpu:.2f} ms vs {source_cpu:.3f} ms{busy}",
        details={
            "messages": setup.messages,
            "message_bytes": setup.size,
            "connections": connections,
            "smtp_source_runs_msg_s": [round(setup.messages / s.seconds) for s in sources],
            "sending_seconds": edition.sending_seconds,
            "ours_cpu_ms_per_message": round(ours_cpu, 3),
            "smtp_source_cpu_ms_per_message": round(source_cpu, 3),
            "cores_busy_while_ours_ran": ours.cores_busy,
            "peak_rss_mib": ours.peak_rss_mib,
        },
    )
