"""The event loop every command runs on: uvloop's where it is installed (Linux and macOS; a
dependency there), else asyncio's own. uvloop runs the same coroutines with its callbacks,
futures and sockets in C: the sender spends about an eighth less CPU a message on it
(docs/benchmarks.md). Without it (Windows, or uninstalled) everything works as before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to the end on a new event loop, as asyncio.run does."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coroutine)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, or None (asyncio's default) where uvloop cannot be imported."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
