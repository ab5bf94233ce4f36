"""The scanner as a service: pass after pass until stopped, waiting in IMAP IDLE where it can
(else polling every poll_seconds), reconnecting and retrying with a growing pause when the
mailbox or the database is away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from newsletter.bounces.mailbox.access import Mailbox, describe
from newsletter.bounces.mailbox.errors import MailboxUnavailable
from newsletter.bounces.mailbox.scanner import Scanner, mailbox_config, open_mailbox
from newsletter.bounces.recorder import BounceRecorder
from newsletter.config.bounces import MailboxConfig
from newsletter.context import AppContext
from newsletter.logs import get_logger

log = get_logger(__name__)

FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 300.0
# How long a cancelled wait for mail may take to end cleanly.
CLEANUP_SECONDS = 5.0


async def run_scanner(context: AppContext, recorder: BounceRecorder, stop: asyncio.Event) -> None:
    """Scan until `stop` is set; never raises for a mailbox or database that is away (it logs,
    pauses and tries again). ConfigError at once when no mailbox is configured."""
    config = mailbox_config(context.settings)
    log.info(
        "bounce.mailbox.started",
        protocol=config.protocol,
        host=config.host,
        port=config.effective_port,
        folder=config.folder,
    )
    await _Runner(Scanner(recorder, config), config, stop).run()
    log.info("bounce.mailbox.stopped")


class _Runner:
    def __init__(self, scanner: Scanner, config: MailboxConfig, stop: asyncio.Event) -> None:
        self.scanner = scanner
        self.config = config
        self.stop = stop
        self.pause = 0.0  # the last pause after a failure; 0 while all is well

    async def run(self) -> None:
        while not self.stop.is_set():
            await self._sleep(await self._session())

    async def _session(self) -> float:
        """Open the mailbox and scan it for as long as it can be watched; the seconds to wait
        before the next session."""
        try:
            mailbox = await open_mailbox(self.config)
        except Exception as exc:
            return self._failed(exc)
        try:
            delay = await self._watch(mailbox)
        except BaseException as exc:
            mailbox.abort()  # an IMAP removal was final when made; POP3's marks are rolled back
            if not isinstance(exc, Exception):
                raise
            return self._failed(exc)
        await mailbox.close()
        return delay

    async def _watch(self, mailbox: Mailbox) -> float:
        while not self.stop.is_set():
            report = await self.scanner.scan(mailbox, self.stop)
            if report.failed:  # the recorder's database, most likely: give it time to come back
                pause = self._next_pause()
                log.warning("bounce.mailbox.paused", failed=report.failed, retry_in=pause)
                return pause
            self.pause = 0.0
            if report.more:
                continue
            if not mailbox.keeps_watch:
                return self.config.poll_seconds
            await _unless(self.stop, mailbox.wait_for_mail(self.config.poll_seconds))
        return 0.0

    def _failed(self, exc: Exception) -> float:
        pause = self._next_pause()
        if isinstance(exc, MailboxUnavailable):
            log.error("bounce.mailbox.unavailable", error=str(exc), setting=exc.setting, retry_in=pause)
        else:  # not expected: logged in full, and retried rather than ending bounce handling
            log.error("bounce.mailbox.failed", error=describe(exc), retry_in=pause, exc_info=exc)
        return pause

    def _next_pause(self) -> float:
        self.pause = min(max(self.pause * 2, FIRST_PAUSE_SECONDS), MAX_PAUSE_SECONDS)
        return self.pause

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)


async def _unless(stop: asyncio.Event, waiting: Coroutine[Any, Any, None]) -> None:
    """Await `waiting`, cancelling it when `stop` is set first. A cancelled wait is given
    CLEANUP_SECONDS to finish its own clean-up (IMAP's DONE and the server's answer) before the
    mailbox is used again: a LOGOUT sent into an unfinished IDLE waits for an answer that never
    comes. A wait that failed raises here (the session ends and a new one starts)."""
    task = asyncio.ensure_future(waiting)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopping):
            pending.cancel()
        await asyncio.wait({task, stopping}, timeout=CLEANUP_SECONDS)
    if task.done() and not task.cancelled():
        task.result()  # raises what the wait raised
        await asyncio.gather(task, stopping, return_exceptions=True)
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
