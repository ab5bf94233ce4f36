"""Bounces: how fast a storm of returned mail is recorded, through the SMTP receiver and through
a provider's webhook, each in one `newsletter` process on SQLite.

- receiver: `newsletter bounces serve` fed one RFC 3464 hard-bounce notice per delivery of an
  edition (each to its own VERP address) over 8 connections; bounces recorded a second (each
  250 comes after its commit) and the receiver's CPU per bounce, against the same client
  sending the same messages to Postfix's `smtp-sink` (which keeps nothing).
- webhook: `POST /webhooks/postmark` (a soft bounce each, a new event id each time, HTTP Basic)
  under wrk, against `GET /healthz` of the same `newsletter serve` process.

Aim: at least 500 bounces a second on one core, each way, so a bounce storm after a big send
never backs up.

    python -m bench --only bounces [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import func, select

from bench import processes
from bench.figures import Figure, at_least, ratio
from bench.population import populated
from bench.postfix import SmtpSink, find_postfix, free_port, wait_for_port
from bench.scratch import Scratch, scratch
from bench.signup import find_wrk
from bench.signup import load as wrk_load
from newsletter.config import load_settings
from newsletter.context import open_context
from newsletter.database.models import BounceEvent, Delivery, Subscriber
from newsletter.editions.service import start_edition
from newsletter.personal.verp import BounceTags, TagKind

CASE = "bounces"
AIM = 500
DOMAIN = "bounce.londondaily.example"
CONNECTIONS = int(__import__("os").environ.get("BENCH_CONNECTIONS", "8"))
POSTMARK_USER, POSTMARK_PASSWORD = "postmark", "bench-postmark-password"
Addressed = list[tuple[str, bytes]]


def run(quick: bool) -> list[dict[str, Any]]:
    readers = 1000 if quick else 5000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-bounces-") as tmp:
        with scratch("sqlite", Path(tmp) / "receiver") as db:
            rows.append(_receiver(db, readers).row())
        with scratch("sqlite", Path(tmp) / "webhook") as db:
            rows += [f.row() for f in _webhook(db, readers, window=3 if quick else 10)]
    return rows


def _env(db: Scratch, **more: str) -> dict[str, str]:
    return db.env(
        bounces__domain=DOMAIN,
        bounces__max_messages_per_minute="1000000000",
        bounces__webhooks__postmark_username=POSTMARK_USER,
        bounces__webhooks__postmark_password=POSTMARK_PASSWORD,
        **more,
    )


def _receiver(db: Scratch, readers: int) -> Figure:
    postfix = find_postfix()
    messages = asyncio.run(_notices(db, readers))
    port = free_port()
    server = processes.Running(
        ("bounces", "serve"), _env(db, bounces__port=str(port)), db.folder / "r.log", db.folder
    )
    try:
        wait_for_port(port, timeout=60)
        cpu_before = _cpu_seconds(server.pid)
        seconds = asyncio.run(_send_all(port, messages))
        cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        stopped = server.stop()
    if stopped.returncode not in (0, -15):
        raise RuntimeError(f"bounces serve exited {stopped.returncode}: {processes.tail(stopped.output)}")
    recorded, bounced = asyncio.run(_recorded(db))
    if recorded != len(messages) or bounced != len(messages):
        raise RuntimeError(f"{recorded:,} recorded and {bounced:,} bounced of {len(messages):,} notices")
    sink_rate = None
    if not isinstance(postfix, str):
        with SmtpSink(postfix) as sink:
            sink_rate = len(messages) / asyncio.run(_send_all(sink.port, messages))
    rate = len(messages) / seconds
    per_bounce_ms = 1000 * cpu / len(messages)
    one_core = len(messages) / cpu if cpu else None  # what the receiver's own CPU allows
    return Figure(
        CASE,
        f"receiver: hard bounces recorded/s, {CONNECTIONS} connections, sqlite",
        ours=rate,
        unit="bounces/s",
        baseline=sink_rate,
        baseline_name="the same client to smtp-sink (records nothing)",
        ratio=ratio(rate, sink_rate),
        aim=f"≥ {AIM}/s on one core",
        met=at_least(one_core, AIM),
        note=f"{len(messages):,} notices in {seconds:.1f} s; receiver CPU {per_bounce_ms:.2f} ms a bounce "
        f"(one core: {one_core or 0:,.0f}/s)",
        details={"cpu_seconds": cpu, "messages": len(messages)},
    )


async def _notices(db: Scratch, readers: int) -> Addressed:
    """One hard-bounce notice per delivery of a fresh edition, each to its VERP address."""
    settings = load_settings(db.config, overrides={"bounces": {"domain": DOMAIN}})
    tags = BounceTags(settings)
    async with populated(settings, readers) as context:
        edition = await start_edition(context, "daily")
        async with context.db.session() as session:
            rows = (
                await session.execute(
                    select(Delivery.id, Subscriber.email)
                    .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                    .where(Delivery.edition_id == edition.id)
                )
            ).all()
    return [(tags.return_path(TagKind.DELIVERY, row.id), _notice(row.email or "")) for row in rows]


def _notice(recipient: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.readers.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.readers.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: user unknown\r\n\r\n--b--\r\n"
    ).encode()


async def _send_all(port: int, messages: Addressed) -> float:
    shares = [messages[n::CONNECTIONS] for n in range(CONNECTIONS)]
    started = time.monotonic()
    await asyncio.gather(*(_send_share(port, share) for share in shares))
    return time.monotonic() - started


async def _send_share(port: int, share: Addressed) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60) as smtp:
        for address, data in share:
            await smtp.sendmail("", [address], data)


async def _recorded(db: Scratch) -> tuple[int, int]:
    async with open_context(db.settings(), migrate=False) as context, context.db.session() as session:
        events = await session.scalar(select(func.count()).select_from(BounceEvent))
        bounced = await session.scalar(select(func.count()).where(Subscriber.status == "bounced"))
    return int(events or 0), int(bounced or 0)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks (USER_HZ = 100)


def _webhook(db: Scratch, readers: int, *, window: int) -> list[Figure]:
    try:
        wrk = find_wrk()
    except LookupError as exc:
        return [Figure(CASE, f"skipped: {exc}")]
    asyncio.run(_readers(db, readers))
    port = free_port()
    env = _env(db, server__port=str(port), server__scheduler="false", server__worker="false")
    server = processes.Running(("serve",), env, db.folder / "w.log", db.folder)
    auth = "Basic " + base64.b64encode(f"{POSTMARK_USER}:{POSTMARK_PASSWORD}".encode()).decode()
    try:
        wait_for_port(port, timeout=60)
        health = wrk_load(wrk, port, "healthz", window)
        hooks = wrk_load(wrk, port, "postmark", window, str(readers), auth)
    finally:
        stopped = server.stop()
    if stopped.returncode not in (0, -15):
        raise RuntimeError(f"serve exited {stopped.returncode}: {processes.tail(stopped.output)}")
    recorded, _ = asyncio.run(_recorded(db))
    return [
        Figure(
            CASE,
            "webhook: POST /webhooks/postmark bounces recorded/s, sqlite",
            ours=hooks.rate,
            unit="req/s",
            baseline=health.rate,
            baseline_name="GET /healthz, same server",
            ratio=ratio(hooks.rate, health.rate),
            aim=f"≥ {AIM}/s on one core",
            met=at_least(hooks.rate, AIM),
            note=f"{hooks.requests:,} in {hooks.seconds:.0f} s, {recorded:,} recorded; "
            f"p50 {hooks.p50_ms:.1f} ms, p99 {hooks.p99_ms:.1f} ms",
            details={"recorded": recorded, "p99_ms": hooks.p99_ms},
        )
    ]


async def _readers(db: Scratch, readers: int) -> None:
    async with populated(db.settings(), readers):
        pass
