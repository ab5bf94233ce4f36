"""How busy the machine's cores were over a stretch of time (from /proc/stat), to tell a sender
that is CPU-bound from one that waits: on two cores, ours, the sink and PostgreSQL share them."""

from __future__ import annotations

import resource
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
