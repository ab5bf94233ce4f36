"""Run the service's parts in one event loop until SIGTERM or SIGINT, then stop them cleanly."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from newsletter.logs import get_logger

log = get_logger(__name__)

# A part of the service: runs until `stopping` is set, then finishes its work in hand.
Part = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def run_parts(parts: Sequence[Part], stopping: asyncio.Event | None = None) -> None:
    """Run every part; SIGTERM/SIGINT (or any part ending with an error) stops them all."""
    stopping = stopping or asyncio.Event()
    # What start-up built (modules, the app, settings, compiled statements) lives as long as the
    # process: out of the collector's way, so a full collection no longer walks it all and stalls
    # every request in flight for tens of milliseconds (bench clicks: p99 60-90 ms -> under 15).
    gc.collect()
    gc.freeze()
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
