"""`newsletter serve` as a process: web, scheduler and worker together; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Subscriber
from tests.support.factories import add_articles, add_subscribers
from tests.support.live import live_server
from tests.support.ports import free_port
from tests.support.process import environment_for, start
from tests.support.smtp import FaultyMailbox, SmtpServer

pytestmark = pytest.mark.slow


async def test_sigterm_during_a_send_finishes_in_flight_and_exits_0(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    await add_articles(context, 3)
    await add_subscribers(context, 300)
    port = free_port()
    sink = FaultyMailbox(delay=0.01)
    with SmtpServer(sink) as server:
        env = environment_for(
            settings,
            NEWSLETTER_SMTP__PORT=str(server.port),
            NEWSLETTER_SERVER__PORT=str(port),
            NEWSLETTER_SCHEDULER__GRACE_HOURS="0",
        )
        service = start("serve", cwd=tmp_path, env=env)
        headers = {"Authorization": f"Bearer {settings.security.admin_token.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        assert service.poll() is None, service.stdout.read() if service.stdout else ""
                        await asyncio.sleep(0.1)
            started = await http.post("/api/editions", json={"newsletter": "daily"})
            assert started.status_code == 202
        async with asyncio.timeout(60):
            while sink.count() < 30:
                await asyncio.sleep(0.02)
        service.send_signal(signal.SIGTERM)
        code = service.wait(30)
        output = service.stdout.read() if service.stdout else ""
        accepted = sink.count()
    assert code == 0, output
    assert "service.stopped" in output
    async with context.db.session() as session:
        statuses = Counter((await session.scalars(select(Delivery.status))).all())
    assert statuses["sending"] == 0
    assert statuses["sent"] == accepted < 300
    assert statuses["sent"] + statuses["queued"] == 300


def test_idle_connections_are_kept_for_keep_alive_seconds(settings: Settings, tmp_path: Path) -> None:
    """uvicorn's own default (5 s) is shorter than a proxy's or a client pool's idle time: a
    request sent on a connection the server was closing failed (seen in the load test)."""
    assert settings.server.keep_alive_seconds > 60  # nginx keeps upstream connections 60 s
    with live_server(tmp_path, settings.database.url, NEWSLETTER_SERVER__KEEP_ALIVE_SECONDS="1") as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            conn.settimeout(30)
            answered = time.monotonic()
            reply = b""
            while not reply.endswith(b"}"):
                reply += conn.recv(4096)
            assert reply.startswith(b"HTTP/1.1 200")
            assert conn.recv(1) == b""  # closed by the server once idle
            assert time.monotonic() - answered < 30


async def test_serve_runs_the_bounce_receiver_and_counts_what_it_records(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    from newsletter.editions.service import start_edition
    from newsletter.personal.verp import BounceTags, TagKind
    from tests.support.editions import deliveries

    await add_articles(context, 3)
    [reader] = await add_subscribers(context, 1)
    edition = await start_edition(context, "daily")
    [row] = await deliveries(context, edition.id)
    port, receiver_port = free_port(), free_port()
    domain = "bounce.londondaily.example"
    env = environment_for(
        settings,
        NEWSLETTER_SERVER__PORT=str(port),
        NEWSLETTER_SERVER__WORKER="false",
        NEWSLETTER_SERVER__METRICS="token",
        NEWSLETTER_BOUNCES__DOMAIN=domain,
        NEWSLETTER_BOUNCES__RECEIVE="true",
        NEWSLETTER_BOUNCES__PORT=str(receiver_port),
    )
    verp = BounceTags(
        settings.model_copy(update={"bounces": settings.bounces.model_copy(update={"domain": domain})})
    )
    address = verp.return_path(TagKind.DELIVERY, row.id)
    notice = (
        b"From: MAILER-DAEMON@mx.readers.example\r\nSubject: failure\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; reader1@readers.example\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    )
    service = start("serve", cwd=tmp_path, env=env)
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver_port, timeout=5) as smtp:
                        await smtp.sendmail("", [address], notice)
                    break
                except (OSError, aiosmtplib.SMTPConnectError):
                    assert service.poll() is None, service.stdout.read() if service.stdout else ""
                    await asyncio.sleep(0.1)
        headers = {"Authorization": f"Bearer {settings.security.admin_token.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            metrics = (await http.get("/metrics")).text
    finally:
        service.send_signal(signal.SIGTERM)
        code = service.wait(30)
    assert code == 0
    assert 'newsletter_bounces_total{kind="hard",outcome="bounced",source="receiver"} 1.0' in metrics
    async with context.db.session() as session:
        status = (await session.execute(select(Subscriber.status).where(Subscriber.id == reader))).scalar()
    assert status == "bounced"
