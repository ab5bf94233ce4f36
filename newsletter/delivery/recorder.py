"""Group commit of delivery outcomes: a message's body goes out only once the previous outcome of
its connection is committed, in the same commit that marks this attempt as started. So a crash
can duplicate at most the messages in flight (one per connection), and the ledger knows which
rows those may be."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from newsletter.delivery.work import Action, Result, WorkItem, WorkKind
from newsletter.logs import get_logger

log = get_logger(__name__)

# Commits a group: outcomes, and attempts about to start; returns the started rows whose lease
# was lost (see Store.record).
Write = Callable[[list[Result], list[WorkItem]], Awaitable[set[tuple[WorkKind, int]]]]
# Called after each committed group with the ids of the editions that had failures.
AfterCommit = Callable[[set[int]], Awaitable[None]]


class Recorder:
    def __init__(self, write: Write, after_commit: AfterCommit | None = None) -> None:
        self.write = write
        self.after_commit = after_commit
        self._pending: list[tuple[Result | None, WorkItem | None, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._closing = False

    def submit_nowait(
        self, result: Result | None, *, started: WorkItem | None = None
    ) -> asyncio.Future[bool]:
        """Queue an outcome and/or an attempt about to start. The future is done once committed:
        False if the attempt could not be marked started because its lease is gone."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((result, started, done))
        self._wake.set()
        return done

    async def run(self) -> None:
        """Commit whatever has accumulated, again and again, until closed and empty."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                if self._closing:
                    break
                continue
            group, self._pending = self._pending, []
            lost = await self._commit(
                [result for result, _, _ in group if result is not None],
                [item for _, item, _ in group if item is not None],
            )
            for _, item, done in group:
                if not done.done():
                    done.set_result(item is None or item.key not in lost)
            if self._closing and not self._pending:
                break

    def close(self) -> None:
        self._closing = True
        self._wake.set()

    async def _commit(self, results: list[Result], started: list[WorkItem]) -> set[tuple[WorkKind, int]]:
        delay = 0.1
        while True:
            try:
                lost = await self.write(results, started)
                break
            except (OperationalError, InterfaceError, DBAPIError, OSError) as exc:
                if isinstance(exc, DBAPIError) and not _connection_fault(exc):
                    raise  # a statement the database refuses: retrying will not help
                # The database went away: nothing is sent meanwhile (senders wait on us).
                log.warning("ledger.write_failed", error=str(exc).splitlines()[0], retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if lost:
            log.warning("delivery.lease_lost", rows=len(lost))
        failing = {r.item.edition_id for r in results if r.action is Action.FAILED and r.item.edition_id}
        if failing and self.after_commit is not None:
            await self.after_commit({e for e in failing if e is not None})
        return lost


def _connection_fault(exc: DBAPIError) -> bool:
    """The database was away or the connection broke (worth retrying), as opposed to a statement
    it refused (a constraint, a bug)."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
