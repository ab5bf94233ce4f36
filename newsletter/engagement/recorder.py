"""Click rows written in batches on ledger threads, each request answered only once its row is
committed: however many clicks arrive while a transaction commits, the next takes them all (no
request holds the event loop or a connection of its own), and a click that was answered is on
disk, so a process killed at any moment loses none.

With more than one lane (PostgreSQL), a batch starts on a free lane while another commits: the
rate is then bound by the CPU rather than by one commit's round trips at a time."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert

from newsletter.database.models import Click
from newsletter.database.writer import LedgerWriter


class ClickRecorder:
    def __init__(self, lanes: Sequence[LedgerWriter]) -> None:
        if not lanes:
            raise ValueError("a click recorder needs at least one ledger thread")
        self._free = list(lanes)
        self._pending: list[dict[str, Any]] = []
        self._batch: asyncio.Future[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def record(self, row: dict[str, Any]) -> None:
        """Return once `row` is committed (raising what the database raised)."""
        self._pending.append(row)
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        batch = self._batch
        if self._free:
            task = asyncio.create_task(self._flush(self._free.pop()))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        await asyncio.shield(batch)

    async def _flush(self, lane: LedgerWriter) -> None:
        try:
            while self._pending:
                rows, self._pending = self._pending, []
                batch, self._batch = self._batch, None
                assert batch is not None
                try:
                    await lane.transaction(functools.partial(_insert, rows=rows))
                except Exception as exc:
                    batch.set_exception(exc)
                    batch.exception()  # retrieved: each waiter raises it itself
                else:
                    batch.set_result(None)
        finally:
            self._free.append(lane)


def _insert(conn: Connection, *, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(Click), rows)
