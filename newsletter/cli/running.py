"""The long-running parts of `serve`, `worker` and `scheduler` (and the demo), put together: the
web app, the scheduler, the delivery worker, the bounce receiver and mailbox scanner, metrics.
Imported only when a service starts, and each part's imports (the web framework, the scheduler,
the mail libraries) only when that part runs: `newsletter worker` does without the web app."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from newsletter.cli.common import fail, note_if_created
from newsletter.config import warnings
from newsletter.context import open_context
from newsletter.delivery.worker import ConfigurationFault
from newsletter.editions.sending import deliver
from newsletter.errors import ConfigError
from newsletter.logs import get_logger
from newsletter.rendering.dkim import check_key
from newsletter.service import run_parts

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.context import AppContext
    from newsletter.service import Part

log = get_logger(__name__)


def worker_part(context: AppContext, reloads: asyncio.Event, reload: Callable[[], Settings]) -> Part:
    """The delivery worker. A configuration fault stops it (said once; the web app and the
    scheduler carry on, nothing is retried with a configuration every relay refused) until the
    configuration is fixed and reloaded (SIGHUP: `reload` reads it again) or the service restarted."""

    async def run_worker(stopping: asyncio.Event) -> None:
        current = AsyncExitStack()  # the context of a reloaded configuration, when there is one
        sending = context
        try:
            while True:
                await _deliver_until(sending, stopping, reloads)
                if stopping.is_set():
                    return
                reloads.clear()
                fresh = _reloaded(reload)
                if fresh is not None:
                    await current.aclose()
                    current = AsyncExitStack()
                    sending = await current.enter_async_context(open_context(fresh))
                    log.info("config.reloaded", part="worker")
        finally:
            await current.aclose()

    return run_worker


async def _deliver_until(context: AppContext, stopping: asyncio.Event, reloads: asyncio.Event) -> None:
    """Deliver until the service stops or a reload is asked for; after a configuration fault,
    wait for either."""
    halt = asyncio.Event()
    follow = asyncio.create_task(_first(stopping, reloads))
    follow.add_done_callback(lambda _: halt.set())
    try:
        await deliver(context, halt)
    except (ConfigurationFault, ConfigError) as exc:
        hint = "fix it, then reload (SIGHUP) or restart the service"
        log.error("delivery.waiting_on_configuration", reason=str(exc), hint=hint)
        await _first(stopping, reloads)
    finally:
        follow.cancel()


def _reloaded(reload: Callable[[], Settings]) -> Settings | None:
    """The configuration read again, or None (said in the log) when it is not valid."""
    try:
        settings = reload()
        check_key(settings.dkim)
    except ConfigError as exc:
        log.error("config.reload_failed", error=str(exc), hint="the worker goes on with what it had")
        return None
    return settings


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def bounce_parts(context: AppContext) -> list[Part]:
    """The bounce receiver (bounces.receive) and the mailbox scanner (bounces.mailbox.host)."""
    settings = context.settings
    if not (settings.bounces.receive or settings.bounces.mailbox.enabled):
        return []
    from newsletter.bounces.recorder import BounceRecorder

    recorder = BounceRecorder(context)
    parts: list[Part] = []
    if settings.bounces.receive:
        from newsletter.bounces.receiver import run_receiver  # aiosmtpd

        parts.append(lambda stopping: run_receiver(settings, recorder, stopping))
    if settings.bounces.mailbox.enabled:
        from newsletter.bounces.mailbox import run_scanner  # the IMAP and POP3 clients

        parts.append(lambda stopping: run_scanner(context, recorder, stopping))
    return parts


def scheduler_part(context: AppContext) -> Part:
    from newsletter.scheduling.scheduler import run_scheduler

    async def run(stopping: asyncio.Event) -> None:
        await run_scheduler(context, stopping)

    return run


async def run_service(
    settings: Settings, *, web: bool, scheduler: bool, worker: bool, reload: Callable[[], Settings]
) -> None:
    if worker:
        check_key(settings.dkim)
    for caution in warnings(settings):
        log.warning("config.warning", warning=caution)
    async with open_context(settings) as context:
        note_if_created(context)
        parts: list[Part] = []
        if web:
            from newsletter.web import create_app
            from newsletter.web.server import web_part

            parts.append(web_part(create_app(settings, context), settings))
        if scheduler:
            parts.append(scheduler_part(context))
        reloads = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _hangup, reloads, worker)
        if worker:
            parts.append(worker_part(context, reloads, reload))
        parts += bounce_parts(context)
        if not parts:
            fail("nothing to run: server.web, server.scheduler and server.worker are all false")
        if settings.server.metrics_port:
            from newsletter.web.health import create_metrics_app
            from newsletter.web.server import http_part

            host, port = settings.server.metrics_host, settings.server.metrics_port
            parts.append(http_part(create_metrics_app(), settings, host=host, port=port))
        log.info("service.started", web=web, scheduler=scheduler, worker=worker)
        try:
            await run_parts(parts)
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        log.info("service.stopped")


def _hangup(reloads: asyncio.Event, worker: bool) -> None:
    if worker:
        log.info("service.reloading", part="worker", hint="other settings take a restart")
        reloads.set()
    else:
        log.warning("service.reload_ignored", hint="only the worker reloads; restart to apply")
