"""`newsletter serve`, `newsletter worker` and `newsletter scheduler`: the long-running parts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.cli.common import ConfigOption, fail, load, run

if TYPE_CHECKING:
    from newsletter.config import Settings


def _run(settings: Settings, config: Path | None, *, web: bool, scheduler: bool, worker: bool) -> None:
    from newsletter.cli.running import run_service  # the service's imports: only for a service
    from newsletter.config import load_settings

    def reload() -> Settings:
        return load_settings(config)  # read again, from the same place

    try:
        run(run_service(settings, web=web, scheduler=scheduler, worker=worker, reload=reload))
    except OSError as exc:
        fail(str(exc))


def serve(config: ConfigOption = None) -> None:
    """Run the web app, scheduler and delivery worker in one process (each can be switched off).

    SIGHUP reloads the worker's configuration (after fixing an SMTP or DKIM setting)."""
    settings = load(config)
    server = settings.server
    _run(settings, config, web=server.web, scheduler=server.scheduler, worker=server.worker)


def worker(config: ConfigOption = None) -> None:
    """Run a delivery worker only (any number of them against PostgreSQL).

    SIGHUP reloads its configuration."""
    _run(load(config), config, web=False, scheduler=False, worker=True)


def scheduler(config: ConfigOption = None) -> None:
    """Run the scheduler only: editions on time, feed polling, sweeping, clean-up."""
    _run(load(config), config, web=False, scheduler=True, worker=False)
