"""Click rows written in batches on the ledger thread, each request answered only once its row
is committed: however many clicks arrive together, one transaction takes them all (no request
holds the event loop or a connection of its own), and a click that was answered is on disk, so
a process killed at any moment loses none."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from sqlalchemy import Connection, insert

from newsletter.database.models import Click
from newsletter.database.writer import LedgerWriter


class ClickRecorder:
    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer
        self._pending: list[dict[str, Any]] = []
        self._batch: asyncio.Future[None] | None = None
        self._flushing: asyncio.Task[None] | None = None

    async def record(self, row: dict[str, Any]) -> None:
        """Return once `row` is committed (raising what the database raised)."""
        self._pending.append(row)
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        batch = self._batch
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await asyncio.shield(batch)

    async def _flush(self) -> None:
        while self._pending:
            rows, self._pending = self._pending, []
            batch, self._batch = self._batch, None
            assert batch is not None
            try:
                await self._writer.transaction(functools.partial(_insert, rows=rows))
            except Exception as exc:
                batch.set_exception(exc)
                batch.exception()  # retrieved: each waiter raises it itself
            else:
                batch.set_result(None)


def _insert(conn: Connection, *, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(Click), rows)
