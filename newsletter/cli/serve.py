"""`newsletter serve`, `newsletter worker` and `newsletter scheduler`: the long-running parts."""

from __future__ import annotations

import asyncio

from newsletter.cli.common import ConfigOption, fail, load, run
from newsletter.config import Settings, warnings
from newsletter.context import AppContext, open_context
from newsletter.delivery.worker import ConfigurationFault
from newsletter.editions.sending import deliver
from newsletter.logs import get_logger
from newsletter.scheduling.scheduler import run_scheduler
from newsletter.service import Part, run_parts
from newsletter.web import create_app
from newsletter.web.health import create_metrics_app
from newsletter.web.server import http_part, web_part

log = get_logger(__name__)


def worker_part(context: AppContext) -> Part:
    async def run_worker(stopping: asyncio.Event) -> None:
        try:
            await deliver(context, stopping)
        except ConfigurationFault as exc:
            # Said once; the web app and the scheduler carry on, nothing is retried with a
            # configuration every relay refused. Fixed and restarted, sending picks up again.
            log.error("delivery.stopped", reason=str(exc), hint="fix the setting, then restart the service")
            await stopping.wait()

    return run_worker


def scheduler_part(context: AppContext) -> Part:
    async def run(stopping: asyncio.Event) -> None:
        await run_scheduler(context, stopping)

    return run


async def run_service(settings: Settings, *, web: bool, scheduler: bool, worker: bool) -> None:
    for caution in warnings(settings):
        log.warning("config.warning", warning=caution)
    async with open_context(settings) as context:
        parts: list[Part] = []
        if web:
            parts.append(web_part(create_app(settings, context), settings))
        if scheduler:
            parts.append(scheduler_part(context))
        if worker:
            parts.append(worker_part(context))
        if not parts:
            fail("nothing to run: server.web, server.scheduler and server.worker are all false")
        if settings.server.metrics_port:
            host, port = settings.server.metrics_host, settings.server.metrics_port
            parts.append(http_part(create_metrics_app(), settings, host=host, port=port))
        log.info("service.started", web=web, scheduler=scheduler, worker=worker)
        await run_parts(parts)
        log.info("service.stopped")


def _run(settings: Settings, *, web: bool, scheduler: bool, worker: bool) -> None:
    try:
        run(run_service(settings, web=web, scheduler=scheduler, worker=worker))
    except OSError as exc:
        fail(str(exc))


def serve(config: ConfigOption = None) -> None:
    """Run the web app, scheduler and delivery worker in one process (each can be switched off)."""
    settings = load(config)
    server = settings.server
    _run(settings, web=server.web, scheduler=server.scheduler, worker=server.worker)


def worker(config: ConfigOption = None) -> None:
    """Run a delivery worker only (run any number of them against PostgreSQL)."""
    _run(load(config), web=False, scheduler=False, worker=True)


def scheduler(config: ConfigOption = None) -> None:
    """Run the scheduler only: editions on time, feed polling, sweeping, clean-up."""
    _run(load(config), web=False, scheduler=True, worker=False)
