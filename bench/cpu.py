"""How busy the machine's cores were over a stretch of time (from /proc/stat), to tell a sender
that is CPU-bound from one that waits: on two cores, ours, the sink and PostgreSQL share them."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _idle_and_total() -> tuple[int, int]:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user … steal


class CoresBusy:
    """`with CoresBusy() as busy: …` then `busy.share`: 0.0 (all idle) to 1.0 (all busy)."""

    def __enter__(self) -> CoresBusy:
        self._start = _idle_and_total()
        self.share: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        idle0, total0 = self._start
        idle1, total1 = _idle_and_total()
        if total1 > total0:
            self.share = round(1 - (idle1 - idle0) / (total1 - total0), 2)


def children_cpu_seconds() -> float:
    """User + system CPU of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def split_cores() -> tuple[set[int], set[int]]:
    """One core for the server, the others for wrk (all of them on a one-core machine)."""
    available = sorted(os.sched_getaffinity(0))
    server = {available[-1]}
    return server, set(available[:-1]) or server


def pin(pid: int, cores: set[int]) -> None:
    """Every thread of process `pid` on `cores` (threads started later inherit it)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return  # it has ended already: waiting for its port will fail
    for task in tasks:
        try:
            os.sched_setaffinity(int(task.name), cores)
        except (ProcessLookupError, PermissionError):
            continue


@contextmanager
def running_on(cores: set[int]) -> Iterator[None]:
    """This thread, and the processes it starts meanwhile (wrk), on `cores`."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks (USER_HZ = 100)
