"""Clicks: requests per second and p50/p99 latency of a tracked article link
(`GET /r/{edition}-{article}-{mac}`, what a reader's click on a headline opens) under wrk on
loopback, against `GET /healthz` of the same `newsletter serve` process (web only), the server
pinned to one core and wrk to the others.

The edition is made by the project's own code, as a send makes it: the daily with
`tracking = "aggregate"`, the sample articles and a few readers, the edition started and drained
to Postfix's `smtp-sink`; the link is taken from the email as it was rendered (the edition's
stored variant). wrk sends a browser's User-Agent and asks for the same link again and again, so
after the first click each one is a "repeat" (counted apart by design, `[tracking]` set so that
no click is a scanner's or over the rate limit): every click is still written, each answer
waiting for its row's commit. After the run, the rows of that link in `clicks` are counted
against the 302s wrk received (the requests still in flight when wrk stopped are written but
not counted by wrk: at most one a connection).

Aim (issue 21): at least 3,000 redirects a second on one core with p99 under 20 ms.

    python -m bench --only clicks [--quick]
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from bench import processes
from bench.cpu import CoresBusy, cpu_seconds, pin, running_on, split_cores
from bench.figures import Figure, at_least, ratio, skipped
from bench.ledger import edition_status
from bench.population import populated
from bench.postfix import SmtpSink, find_postfix, free_port, wait_for_port
from bench.scratch import Scratch, postgres_missing, scratch
from bench.signup import CONNECTIONS, SCRIPT, THREADS, TIMEOUT, Load, find_wrk
from bench.signup import load as wrk_load
from newsletter.config import load_settings
from newsletter.context import open_context
from newsletter.database.models import Click, EditionVariant
from newsletter.editions.sending import drain
from newsletter.editions.service import start_edition

CASE = "clicks"
AIM_RATE, AIM_P99_MS = 3_000, 20.0
READERS = 10
NEWSLETTER = "daily"
# The scratch config's daily, tracked; no scanner window (the edition goes out just before the
# load) and a rate limit wrk's one client stays under.
TRACKING = """
[tracking]
scanner_seconds = 0
max_clicks_per_minute = 100000
"""
_STORY_LINK = re.compile(r'class="(?:lead|story)-title"[^>]*><a href="([^"]+)"')


@dataclass(frozen=True)
class Clicks:
    """A wrk run in mode "click": its figures and the 302s among its answers."""

    load: Load
    redirects: int


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
    with tempfile.TemporaryDirectory(prefix="bench-clicks-") as tmp:
        for backend in ["sqlite"] if quick else ["sqlite", "postgresql"]:
            missing = postgres_missing() if backend == "postgresql" else None
            if missing is not None:
                rows.append(skipped(CASE, f"{backend}: {missing}"))
                continue
            with scratch(backend, Path(tmp) / backend) as db:
                _track(db)
                with SmtpSink(postfix) as sink:
                    links = asyncio.run(_sent_edition(db, sink.port))
                rows += [f.row() for f in _measure(db, wrk, links, window, warm=not quick)]
    return rows


def _track(db: Scratch) -> None:
    """The scratch config's newsletter tracked (aggregate), with TRACKING."""
    config = db.config.read_text()
    newsletter = 'id = "daily"\n'
    if newsletter not in config:
        raise RuntimeError(f"no {newsletter!r} in the scratch config")
    config = config.replace(newsletter, f'{newsletter}tracking = "aggregate"\n', 1)
    db.config.write_text(config + TRACKING)


async def _sent_edition(db: Scratch, smtp_port: int) -> list[str]:
    """One edition of the daily sent to every reader; the paths of its story links, as its
    emails carry them (the stored variant's HTML)."""
    settings = load_settings(db.config, overrides={"smtp": {"port": smtp_port}})
    async with populated(settings, READERS) as context:
        edition = await start_edition(context, NEWSLETTER)
        await drain(context, editions={edition.id})
        status = await edition_status(context, edition.id)
        if status != "done":
            raise RuntimeError(f"the edition is {status} after draining, not done")
        async with context.db.session() as session:
            html = await session.scalar(
                select(EditionVariant.html).where(EditionVariant.edition_id == edition.id).limit(1)
            )
    links = [urlsplit(link).path for link in _STORY_LINK.findall(html or "")]
    if len(links) < 2 or not all(link.startswith("/r/") for link in links):
        raise RuntimeError(f"the edition's email has no tracked story links: {links[:3]}")
    return links


def _measure(db: Scratch, wrk: str, links: list[str], window: int, *, warm: bool) -> list[Figure]:
    """`links[0]` for the check and the warm-up, `links[1]` for the measured run: the rows of
    the measured run are those of its article alone."""
    checked, measured = links[0], links[1]
    server_cores, load_cores = split_cores()
    port = free_port()
    env = db.env(server__port=str(port), server__scheduler="false", server__worker="false")
    server = processes.Running(("serve",), env, db.folder / "serve.log", db.folder)
    pin(server.pid, server_cores)  # before it starts any thread; its threads are pinned again below
    try:
        wait_for_port(port, timeout=60)
        target = _check(port, checked)
        pin(server.pid, server_cores)
        with running_on(load_cores):
            if warm:
                _clicks(wrk, port, 2, checked)
                wrk_load(wrk, port, "healthz", 2)
            health = wrk_load(wrk, port, "healthz", window)
            cpu_before = cpu_seconds(server.pid)
            with CoresBusy() as busy:
                clicks = _clicks(wrk, port, window, measured)
            cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        stopped = server.stop()  # SIGTERM: the requests in flight are answered, their rows written
    if stopped.returncode not in (0, -15):
        raise RuntimeError(f"serve exited {stopped.returncode}: {processes.tail(stopped.output)}")
    rows = asyncio.run(_rows(db, measured))
    return _figures(db.backend, clicks, health, rows, target, cpu, busy.share, len(server_cores))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _check(port: int, path: str) -> str:
    """The link answers a 302 to an article (its Location, cut to the host)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    )
    try:
        with direct.open(request, timeout=10) as answer:
            raise RuntimeError(f"{path} answered {answer.status}, not 302")
    except urllib.error.HTTPError as exc:
        if exc.code != 302 or not exc.headers.get("location", "").startswith("https://"):
            raise RuntimeError(f"{path} answered {exc.code} ({exc.headers.get('location')})") from exc
        location = urlsplit(exc.headers["location"])
        return f"{location.scheme}://{location.netloc}/…"


def _clicks(wrk: str, port: int, seconds: int, path: str) -> Clicks:
    """wrk with bench/load.lua in mode "click" on `path` for `seconds`."""
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", TIMEOUT]
    command += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}", "--", "click", uuid.uuid4().hex[:8], path]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    figures = json.loads(line.removeprefix("WRK_JSON "))
    if figures["status_errors"]:
        raise RuntimeError(f"click: {figures['status_errors']} answers were not 2xx or 3xx")
    load = Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
        max_ms=figures["max_us"] / 1e3,
        unanswered=figures["socket_errors"],
    )
    return Clicks(load, figures["redirects"])


async def _rows(db: Scratch, path: str) -> int:
    """The rows in `clicks` of the link at `path` (its article: no other run clicks it)."""
    article_id = int(path.removeprefix("/r/").split("-")[1])
    async with open_context(db.settings(), migrate=False) as context, context.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Click).where(Click.article_id == article_id)
        )
    return int(count or 0)


def _figures(
    backend: str,
    clicks: Clicks,
    health: Load,
    rows: int,
    target: str,
    cpu: float,
    busy: float | None,
    server_cores: int,
) -> list[Figure]:
    name = "GET /healthz, same server"
    load = clicks.load
    per_request_ms = 1000 * cpu / load.requests if load.requests else None
    server_busy = cpu / load.seconds if load.seconds else None
    what = "GET /r/{token} (tracked link)"
    details = {
        "target": target,
        "threads": THREADS,
        "connections": CONNECTIONS,
        "server_cores": server_cores,
        "server_cpu_seconds": cpu,
        "server_cpu_ms_per_request": per_request_ms,
        "server_share_of_core": server_busy,
        "cores_busy": busy,
        "answers": load.requests,
        "redirects": clicks.redirects,
        "click_rows": rows,
        "unanswered": load.unanswered,
        "max_ms": load.max_ms,
        "healthz_unanswered": health.unanswered,
        "healthz_p99_ms": health.p99_ms,
    }
    # Every 302 has its row; a few more rows than 302s are the requests in flight at the end.
    written = clicks.redirects <= rows <= clicks.redirects + CONNECTIONS + load.unanswered
    note = (
        f"{load.requests:,} in {load.seconds:.0f} s; {clicks.redirects:,} 302s, {rows:,} rows in clicks"
        + ("" if written else " (MISMATCH)")
        + f"; server pinned to one core: CPU {per_request_ms or 0:.2f} ms a request, "
        f"{100 * (server_busy or 0):.0f}% of that core"
        + (f"; {load.unanswered} unanswered" if load.unanswered else "")
    )
    return [
        Figure(
            CASE,
            f"{what} requests/s, {backend}",
            ours=load.rate,
            unit="req/s",
            baseline=health.rate,
            baseline_name=name,
            ratio=ratio(load.rate, health.rate),
            aim=f"≥ {AIM_RATE:,} req/s on one core",
            met=at_least(load.rate, AIM_RATE),
            note=note,
            details=details,
        ),
        Figure(
            CASE,
            f"{what} p50 latency, {backend}",
            ours=load.p50_ms,
            unit="ms",
            baseline=health.p50_ms,
            baseline_name=name,
            ratio=ratio(load.p50_ms, health.p50_ms),
        ),
        Figure(
            CASE,
            f"{what} p99 latency, {backend}",
            ours=load.p99_ms,
            unit="ms",
            baseline=health.p99_ms,
            baseline_name=name,
            ratio=ratio(load.p99_ms, health.p99_ms),
            aim=f"< {AIM_P99_MS:g} ms",
            met=None if load.p99_ms is None else load.p99_ms < AIM_P99_MS,
        ),
        Figure(
            CASE,
            f"{what} rows written, {backend}",
            ours=rows,
            unit="rows",
            baseline=clicks.redirects,
            baseline_name="302s wrk received",
            ratio=ratio(rows, clicks.redirects, 4),
            aim="every 302 has its row",
            met=written,
            note=f"{rows - clicks.redirects:+,} (requests in flight when wrk stopped: at most {CONNECTIONS})",
        ),
    ]
