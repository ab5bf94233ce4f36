"""`newsletter bounces serve`: an SMTP receiver for the bounce domain's MX.

It accepts mail only for genuine VERP addresses (and the bare bounce address, where feedback
loops send their reports), within a size limit and a rate per client, and answers 250 only
once the report is recorded: a database that is down gets 451, and the sending MTA keeps the
report and tries again, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque

from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.bounces.classify import classify
from newsletter.bounces.incoming import BounceSource, Incoming, message_key
from newsletter.bounces.recorder import BounceRecorder
from newsletter.config import Settings
from newsletter.logs import get_logger

log = get_logger(__name__)

OK = "250 2.0.0 OK"
UNKNOWN_MAILBOX = "550 5.1.1 no such mailbox here"
TOO_MANY_RECIPIENTS = "452 4.5.3 too many recipients"
SLOW_DOWN = "421 4.7.0 too many messages from your address; try again later"
TRY_LATER = "451 4.3.0 could not record the report now; try again later"
WINDOW_SECONDS = 60.0
INLINE_BYTES = 64 * 1024


class RateWindow:
    """Messages per client address within the last minute (in this process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: defaultdict[str, deque[float]] = defaultdict(deque)

    def admit(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        seen = self._seen[client]
        while seen and seen[0] <= now - WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > 10_000:  # forget idle clients rather than grow without end
            for idle in [c for c, s in self._seen.items() if not s]:
                del self._seen[idle]
        return True


class BounceHandler:
    """aiosmtpd's handler: who may be mailed, and what to do with a message."""

    def __init__(self, settings: Settings, recorder: BounceRecorder) -> None:
        self.tags = recorder.matcher.tags  # shared: a tag checked at RCPT is not checked twice
        self.recorder = recorder
        bounces = settings.bounces
        self.bare_address = f"{bounces.local_part}@{bounces.domain}".lower()
        self.max_recipients = bounces.max_recipients
        self.rates = RateWindow(bounces.max_messages_per_minute)

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        client = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        if not self.rates.admit(client):
            log.warning("bounce.receiver_rate_limited", client=client)
            return SLOW_DOWN
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return OK

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return TOO_MANY_RECIPIENTS
        if address.lower() != self.bare_address and self.tags.read_address(address) is None:
            return UNKNOWN_MAILBOX
        envelope.rcpt_tos.append(address)
        return OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)  # decode_data=False
        recipients = tuple(envelope.rcpt_tos)
        try:
            # A notice of a few kB reads in a fraction of a millisecond; a large one on a thread.
            report = classify(raw) if len(raw) <= INLINE_BYTES else await asyncio.to_thread(classify, raw)
            await self.recorder.record(
                Incoming(BounceSource.RECEIVER, report, message_key(raw), envelope_recipients=recipients)
            )
        except Exception as error:  # the database, most likely: the sender keeps it and retries
            log.error("bounce.receiver_not_recorded", error=type(error).__name__, detail=str(error)[:200])
            return TRY_LATER
        return OK


def smtp_factory(settings: Settings, recorder: BounceRecorder) -> SMTP:
    handler = BounceHandler(settings, recorder)
    return SMTP(
        handler,
        data_size_limit=settings.bounces.max_message_bytes,
        hostname=settings.bounces.domain or None,
        ident="newsletter bounce receiver",
        timeout=60,
    )


async def start_receiver(settings: Settings, recorder: BounceRecorder) -> asyncio.Server:
    """Listen on bounces.host:bounces.port in the running loop (port 0: any free port)."""
    loop = asyncio.get_running_loop()
    bounces = settings.bounces
    server = await loop.create_server(lambda: smtp_factory(settings, recorder), bounces.host, bounces.port)
    port = server.sockets[0].getsockname()[1]
    log.info("bounce.receiver_listening", host=bounces.host, port=port, domain=bounces.domain)
    return server


async def run_receiver(settings: Settings, recorder: BounceRecorder, stopping: asyncio.Event) -> None:
    server = await start_receiver(settings, recorder)
    try:
        await stopping.wait()
    finally:
        server.close()
        await server.wait_closed()
