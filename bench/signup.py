"""Signup: requests per second and p50/p99 latency of `POST /subscribe` (JSON, a new address every
time) under wrk on loopback, against `GET /healthz` of the same `newsletter serve` process (web
only, the per-IP signup limit raised out of the way), on SQLite and on PostgreSQL.

    python -m bench --only signup [--quick]
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import processes
from bench.figures import Figure, ratio, skipped
from bench.postfix import apt_install, free_port, tool, wait_for_port
from bench.scratch import Scratch, postgres_missing, scratch
from newsletter.context import open_context
from newsletter.database.models import Subscriber

CASE = "signup"
SCRIPT = Path(__file__).with_name("load.lua")
THREADS, CONNECTIONS = 1, 16
TIMEOUT = "10s"  # wrk's default of 2 s would count SQLite's slowest signups as errors


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    # Requests that got no answer within TIMEOUT (or lost their connection): counted, not hidden.
    unanswered: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def find_wrk() -> str:
    """wrk's path; raises LookupError with the reason when it cannot be had."""
    found = tool("wrk")
    if found is None:
        problem = apt_install("wrk")
        found = tool("wrk")
        if problem is not None or found is None:
            raise LookupError(problem or "wrk is not installed")
    return found


def run(quick: bool) -> list[dict[str, Any]]:
    try:
        wrk = find_wrk()
    except LookupError as exc:
        return [skipped(CASE, str(exc))]
    window = 3 if quick else 10
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-signup-") as tmp:
        for backend in ["sqlite"] if quick else ["sqlite", "postgresql"]:
            missing = postgres_missing() if backend == "postgresql" else None
            if missing is not None:
                rows.append(skipped(CASE, f"{backend}: {missing}"))
                continue
            with scratch(backend, Path(tmp) / backend) as db:
                rows += [f.row() for f in _measure(db, wrk, window, warm=not quick)]
    return rows


def _measure(db: Scratch, wrk: str, window: int, *, warm: bool) -> list[Figure]:
    port = free_port()
    env = db.env(
        server__port=str(port),
        server__scheduler="false",
        server__worker="false",
        subscriptions__rate_limit_per_minute="1000000000",
    )
    server = processes.Running(("serve",), env, db.folder / "serve.log", db.folder)
    try:
        _wait_until_healthy(port, server)
        if warm:
            load(wrk, port, "subscribe", 2)
            load(wrk, port, "healthz", 2)
        health = load(wrk, port, "healthz", window)
        signup = load(wrk, port, "subscribe", window)
    finally:
        stopped = server.stop()
    if stopped.returncode != 0:
        raise RuntimeError(f"serve exited {stopped.returncode}: {processes.tail(stopped.output)}")
    created = asyncio.run(_load_subscribers(db))
    return _figures(db.backend, signup, health, created)


def _wait_until_healthy(port: int, server: processes.Running) -> None:
    wait_for_port(port, timeout=60)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
        if answer.status != 200 or not server.alive():
            raise RuntimeError(f"/healthz answered {answer.status}")


def load(wrk: str, port: int, mode: str, seconds: int, *more: str) -> Load:
    """wrk with bench/load.lua in `mode` (`more`: the mode's own arguments) for `seconds`."""
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", TIMEOUT]
    command += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}", "--", mode, uuid.uuid4().hex[:8], *more]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    figures = json.loads(line.removeprefix("WRK_JSON "))
    if figures["status_errors"]:
        raise RuntimeError(f"{mode}: {figures['status_errors']} answers were not 2xx")
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
        max_ms=figures["max_us"] / 1e3,
        unanswered=figures["socket_errors"],
    )


async def _load_subscribers(db: Scratch) -> int:
    async with open_context(db.settings(), migrate=False) as context, context.db.session() as session:
        count = await session.scalar(select(func.count()).where(Subscriber.email.like("load-%")))
    return int(count or 0)


def _figures(backend: str, signup: Load, health: Load, created: int) -> list[Figure]:
    name = "GET /healthz, same server"
    return [
        Figure(
            CASE,
            f"POST /subscribe requests/s, {backend}",
            ours=signup.rate,
            unit="req/s",
            baseline=health.rate,
            baseline_name=name,
            ratio=ratio(signup.rate, health.rate),
            note=f"{signup.requests:,} signups in {signup.seconds:.0f} s; {created:,} readers stored"
            + (f"; {signup.unanswered} unanswered within {TIMEOUT}" if signup.unanswered else ""),
            details={
                "threads": THREADS,
                "connections": CONNECTIONS,
                "readers_stored": created,
                "unanswered": signup.unanswered,
                "max_ms": signup.max_ms,
                "healthz_unanswered": health.unanswered,
            },
        ),
        *(
            Figure(
                CASE,
                f"POST /subscribe {label} latency, {backend}",
                ours=getattr(signup, f"{label}_ms"),
                unit="ms",
                baseline=getattr(health, f"{label}_ms"),
                baseline_name=name,
                ratio=ratio(getattr(signup, f"{label}_ms"), getattr(health, f"{label}_ms")),
            )
            for label in ("p50", "p99")
        ),
    ]
