"""Archive: requests per second and p50/p99 latency of one edition's web page
(`GET /archive/daily/{date}`, the page every reader's "View in your browser" link opens) under
wrk on loopback, against `GET /healthz` of the same `newsletter serve` process (web only), the
server pinned to one core and wrk to the others.

The edition is made by the project's own code: the sample articles and a few readers, the
edition started and drained to Postfix's `smtp-sink`, so the page is published as a real send
publishes it. wrk asks for the same page without `If-None-Match`, so every answer is the whole
page (from the process's 5-second cache, rebuilt when it runs out, as in production).

Aim (issue 20): at least 2,000 requests a second on one core with p99 under 50 ms.

    python -m bench --only archive [--quick]
"""

from __future__ import annotations

import asyncio
import tempfile
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

from bench import processes
from bench.cpu import CoresBusy, cpu_seconds, pin, running_on, split_cores
from bench.figures import Figure, at_least, ratio, skipped
from bench.ledger import edition_status
from bench.population import populated
from bench.postfix import SmtpSink, find_postfix, free_port, wait_for_port
from bench.scratch import Scratch, postgres_missing, scratch
from bench.signup import CONNECTIONS, THREADS, Load, find_wrk
from bench.signup import load as wrk_load
from newsletter.config import load_settings
from newsletter.editions.sending import drain
from newsletter.editions.service import start_edition

CASE = "archive"
AIM_RATE, AIM_P99_MS = 2_000, 50.0
READERS = 10
NEWSLETTER = "daily"


def run(quick: bool) -> list[dict[str, Any]]:
    try:
        wrk = find_wrk()
    except LookupError as exc:
        return [skipped(CASE, str(exc))]
    postfix = find_postfix()
    if isinstance(postfix, str):
        return [skipped(CASE, postfix)]
    window = 3 if quick else 10
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        for backend in ["sqlite"] if quick else ["sqlite", "postgresql"]:
            missing = postgres_missing() if backend == "postgresql" else None
            if missing is not None:
                rows.append(skipped(CASE, f"{backend}: {missing}"))
                continue
            with scratch(backend, Path(tmp) / backend) as db:
                with SmtpSink(postfix) as sink:
                    path = asyncio.run(_sent_edition(db, sink.port))
                rows += [f.row() for f in _measure(db, wrk, path, window, warm=not quick)]
    return rows


async def _sent_edition(db: Scratch, smtp_port: int) -> str:
    """One edition of the daily sent to every reader; the path of its archive page."""
    settings = load_settings(db.config, overrides={"smtp": {"port": smtp_port}})
    async with populated(settings, READERS) as context:
        edition = await start_edition(context, NEWSLETTER)
        await drain(context, editions={edition.id})
        status = await edition_status(context, edition.id)
        if status != "done":
            raise RuntimeError(f"the edition is {status} after draining, not done")
        day: date = edition.edition_date
        suffix = f"/{edition.sequence + 1}" if edition.sequence else ""
    return f"/archive/{NEWSLETTER}/{day.isoformat()}{suffix}"


def _measure(db: Scratch, wrk: str, path: str, window: int, *, warm: bool) -> list[Figure]:
    server_cores, load_cores = split_cores()
    port = free_port()
    env = db.env(server__port=str(port), server__scheduler="false", server__worker="false")
    server = processes.Running(("serve",), env, db.folder / "serve.log", db.folder)
    pin(server.pid, server_cores)  # before it starts any thread; its threads are pinned again below
    try:
        wait_for_port(port, timeout=60)
        page_bytes = _check(port, path)
        pin(server.pid, server_cores)
        with running_on(load_cores):
            if warm:
                wrk_load(wrk, port, "get", 2, path)
                wrk_load(wrk, port, "healthz", 2)
            health = wrk_load(wrk, port, "healthz", window)
            cpu_before = cpu_seconds(server.pid)
            with CoresBusy() as busy:
                page = wrk_load(wrk, port, "get", window, path)
            cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        stopped = server.stop()
    if stopped.returncode not in (0, -15):
        raise RuntimeError(f"serve exited {stopped.returncode}: {processes.tail(stopped.output)}")
    return _figures(db.backend, path, page, health, page_bytes, cpu, busy.share, len(server_cores))


def _check(port: int, path: str) -> int:
    """The page is there (a 200 with HTML); its size in bytes. Also fills the server's cache."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with direct.open(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        body = answer.read()
        kind = answer.headers.get("content-type", "")
        if answer.status != 200 or not kind.startswith("text/html"):
            raise RuntimeError(f"{path} answered {answer.status} ({kind})")
    return len(body)


def _figures(
    backend: str,
    path: str,
    page: Load,
    health: Load,
    page_bytes: int,
    cpu: float,
    busy: float | None,
    server_cores: int,
) -> list[Figure]:
    name = "GET /healthz, same server"
    per_request_ms = 1000 * cpu / page.requests if page.requests else None
    server_busy = cpu / page.seconds if page.seconds else None
    what = "GET /archive/{newsletter}/{date}"
    details = {
        "path": path,
        "page_bytes": page_bytes,
        "threads": THREADS,
        "connections": CONNECTIONS,
        "server_cores": server_cores,
        "server_cpu_seconds": cpu,
        "server_cpu_ms_per_request": per_request_ms,
        "server_share_of_core": server_busy,
        "cores_busy": busy,
        "unanswered": page.unanswered,
        "max_ms": page.max_ms,
        "healthz_unanswered": health.unanswered,
        "healthz_p99_ms": health.p99_ms,
    }
    note = (
        f"{page.requests:,} in {page.seconds:.0f} s, {page_bytes:,} B a page; server pinned to one core: "
        f"CPU {per_request_ms or 0:.2f} ms a request, {100 * (server_busy or 0):.0f}% of that core"
        + (f"; {page.unanswered} unanswered" if page.unanswered else "")
    )
    return [
        Figure(
            CASE,
            f"{what} requests/s, {backend}",
            ours=page.rate,
            unit="req/s",
            baseline=health.rate,
            baseline_name=name,
            ratio=ratio(page.rate, health.rate),
            aim=f"≥ {AIM_RATE:,} req/s on one core",
            met=at_least(page.rate, AIM_RATE),
            note=note,
            details=details,
        ),
        Figure(
            CASE,
            f"{what} p50 latency, {backend}",
            ours=page.p50_ms,
            unit="ms",
            baseline=health.p50_ms,
            baseline_name=name,
            ratio=ratio(page.p50_ms, health.p50_ms),
        ),
        Figure(
            CASE,
            f"{what} p99 latency, {backend}",
            ours=page.p99_ms,
            unit="ms",
            baseline=health.p99_ms,
            baseline_name=name,
            ratio=ratio(page.p99_ms, health.p99_ms),
            aim=f"< {AIM_P99_MS:g} ms",
            met=None if page.p99_ms is None else page.p99_ms < AIM_P99_MS,
        ),
    ]
