"""Run the service's parts in one event loop until SIGTERM or SIGINT, then stop them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI

from newsletter.config import Settings
from newsletter.logs import get_logger

log = get_logger(__name__)

# A part of the service: runs until `stopping` is set, then finishes its work in hand.
Part = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def web_part(app: FastAPI, settings: Settings) -> Part:
    async def run(stopping: asyncio.Event) -> None:
        server = _Server(
            uvicorn.Config(
                app,
                host=settings.server.host,
                port=settings.server.port,
                log_config=None,
                proxy_headers=True,
                forwarded_allow_ips=settings.server.forwarded_allow_ips,
                timeout_graceful_shutdown=10,
                timeout_keep_alive=settings.server.keep_alive_seconds,
            )
        )
        serving = asyncio.create_task(server.serve())
        stopped = asyncio.create_task(stopping.wait())
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        stopped.cancel()
        await serving
        if not server.started:
            raise OSError(f"could not listen on {settings.server.host}:{settings.server.port}")

    return run


async def run_parts(parts: Sequence[Part], stopping: asyncio.Event | None = None) -> None:
    """Run every part; SIGTERM/SIGINT (or any part ending with an error) stops them all."""
    stopping = stopping or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stopping)
    tasks = [asyncio.create_task(part(stopping)) for part in parts]
    try:
        for finished in asyncio.as_completed(tasks):
            try:
                await finished
            except Exception:
                stopping.set()
                raise
            stopping.set()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await asyncio.gather(*tasks, return_exceptions=True)


def _on_signal(sig: signal.Signals, stopping: asyncio.Event) -> None:
    log.info("service.stopping", signal=sig.name)
    stopping.set()
