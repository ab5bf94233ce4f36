"""Work handed from an event loop to threads of our own, and its outcome handed back: a queue
and one `call_soon_threadsafe`. A per-message hop through `run_in_executor` costs as much as a
small job (its concurrent future, condition and chained callbacks), and an executor's several
threads, woken together on a small machine, spend more in the kernel than in the work."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class JobThreads:
    """`count` threads of `name` taking jobs from one queue, started on first use. They hold
    nothing that needs closing, so they do not keep the program from exiting (daemon threads)."""

    def __init__(self, name: str, count: int = 1) -> None:
        self._name = name
        self._count = max(1, count)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    async def run(self, job: Callable[[], T]) -> T:
        """`job()` on one of the threads; its result or exception here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._threads:
            self._start()
        self._jobs.put((loop, future, job))
        return await future

    async def close(self) -> None:
        """End the threads once the jobs handed over before this are done."""
        threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            await asyncio.to_thread(thread.join)

    def _start(self) -> None:
        for number in range(self._count):
            thread = threading.Thread(target=self._serve, name=f"{self._name}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            serve_job(job)


def serve_job(job: Job) -> None:
    """Run one job on this thread and hand its outcome to the loop that is waiting for it."""
    loop, future, call = job
    if future.cancelled():  # its caller went away before it began, as with an executor
        return
    try:
        result = call()
    except BaseException as exc:  # handed to the caller, as run_in_executor would
        settle(loop, future, None, exc)
    else:
        settle(loop, future, result, None)


def settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    """From a thread: a job's outcome to its caller, on the caller's loop."""
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
        loop.call_soon_threadsafe(_resolve, future, result, error)


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
