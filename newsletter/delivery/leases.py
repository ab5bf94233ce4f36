"""The lease keeper: while a worker runs, its leases are renewed, claimed messages re-checked,
and (the service's one sweeper) every worker's expired leases handed back. A worker's identity
is its lease owner: host:pid:nonce."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.delivery.recheck import Recheck
from newsletter.delivery.workstore import Store
from newsletter.logs import get_logger

log = get_logger(__name__)


def worker_id() -> str:
    """host:pid:started.nonce — lets a restarted worker on the same host reclaim a dead one's
    leases at once. `started` (the process's start time, where /proc tells it) tells the dead
    worker from a later process that was given the same pid (pids wrap at 32,768 by default)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}.{uuid.uuid4().hex[:8]}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22; the command name (field 2) is in parentheses and may itself hold spaces.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


class LeaseOptions(Protocol):
    @property
    def lease(self) -> timedelta: ...
    @property
    def sweep_seconds(self) -> float: ...


class LeaseKeeper:
    def __init__(
        self, store: Store, recheck: Recheck, options: LeaseOptions, *, requeued: Callable[[], None]
    ) -> None:
        self.store = store
        self.recheck = recheck
        self.options = options
        self.requeued = requeued  # called when expired leases came back: there is work again

    async def run(self, finished: asyncio.Event) -> None:
        """Re-check readers and editions every `Recheck.interval`, renew this worker's leases
        every third of a lease, sweep every `sweep_seconds`, until `finished`."""
        renew_every = max(1.0, self.options.lease.total_seconds() / 3)
        last_renew = last_sweep = time.monotonic()
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), timeout=self.recheck.interval)
            now = time.monotonic()
            try:
                await self.recheck.refresh()
                if now - last_renew >= renew_every:
                    last_renew = now
                    await self.store.renew()
                if now - last_sweep >= self.options.sweep_seconds:
                    last_sweep = now
                    if requeued := await self.store.sweep():
                        log.info("leases.requeued", rows=requeued)
                        self.requeued()
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("worker.housekeeping_failed", error=str(exc).splitlines()[0])

    async def reclaim_dead_owners(self) -> None:
        """Leases of workers on this host whose process is gone come back at once."""
        host = socket.gethostname()
        dead = [owner for owner in await self.store.lease_owners() if _dead_local_owner(owner, host)]
        if dead and (count := await self.store.reclaim(dead)):
            log.info("worker.reclaimed", rows=count, owners=len(dead))

    async def hand_back_own(self) -> None:
        """At the end of a run: whatever is still leased to this worker (messages a failing
        sender was cut off in) goes back now rather than when its lease expires."""
        try:
            if count := await self.store.reclaim([self.store.owner]):
                log.info("worker.handed_back", rows=count)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("worker.hand_back_failed", error=str(exc).splitlines()[0])


def _dead_local_owner(owner: str, host: str) -> bool:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    started = parts[2].split(".", 1)[0] if "." in parts[2] else ""
    return bool(started) and _start_time(pid) not in ("", started)  # the pid was given again
