"""A ledger thread: one synchronous connection, one thread hop per transaction (the delivery
worker's outcomes, the bounce recorder's reports).

Through the async driver a small transaction costs several event-loop round trips (on SQLite,
about 2 ms); here it costs one hop and the statements themselves (about 0.1 ms). At one SMTP
connection there is a group, hence a hop, per message, so the hop is newsletter.handoff's: half
the CPU of `run_in_executor`."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine

from newsletter.config import DatabaseConfig
from newsletter.database.engine import ForegroundFirst, open_sync_engine
from newsletter.handoff import Job, serve_job

T = TypeVar("T")
# How often an idle ledger thread checks that the program is not exiting without closing it.
IDLE_CHECK_SECONDS = 1.0


class LedgerWriter:
    def __init__(
        self,
        config: DatabaseConfig,
        foreground: ForegroundFirst | None = None,
        *,
        relaxed_durability: bool = False,
    ) -> None:
        """With `relaxed_durability`, a PostgreSQL commit does not wait for its WAL flush (see
        Recorder): set once for the thread's connection, not in each transaction (a round trip
        each)."""
        self._config = config
        self._foreground = foreground
        self._relaxed = relaxed_durability
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction on the ledger thread."""
        return await self._call(lambda: self._run(work))

    async def _call(self, job: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="ledger")
            self._thread.start()
        self._jobs.put((loop, future, job))
        return await future

    def _serve(self) -> None:
        """The ledger thread: jobs in order until closed (or until the program exits without
        closing it: it is not kept waiting for a thread that has nothing left to do). Its
        connection is closed here, on its way out, whoever stopped waiting for it."""
        try:
            self._serve_jobs()
        finally:
            self._close()

    def _serve_jobs(self) -> None:
        main = threading.main_thread()
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_CHECK_SECONDS)
            except queue.Empty:
                if not main.is_alive():
                    return
                continue
            if job is None:
                return
            serve_job(job)

    def _run(self, work: Callable[[Connection], T]) -> T:
        conn = self._conn or self._connect()
        if self._foreground is not None:
            self._foreground.wait_for_turn()
        try:
            with conn.begin():
                return work(conn)
        except Exception:
            self._drop(conn)
            raise

    def _connect(self) -> Connection:
        if self._engine is None:
            self._engine = open_sync_engine(self._config, pool_size=1)
        conn = self._engine.connect()
        if self._relaxed and conn.dialect.name == "postgresql":
            try:
                conn.exec_driver_sql("SET synchronous_commit TO OFF")
                conn.commit()
            except Exception:
                self._drop(conn)
                raise
        self._conn = conn
        return conn

    def _drop(self, conn: Connection) -> None:
        """A broken connection goes back to the one-connection pool as broken, not kept; the
        next transaction opens a fresh one."""
        self._conn = None
        conn.invalidate()
        conn.close()

    async def close(self) -> None:
        """Finish the jobs already handed over, then close the connection (on the ledger
        thread, so a caller cancelled while waiting here leaves nothing open)."""
        thread = self._thread
        if thread is None:
            self._close()
            return
        self._thread = None
        self._jobs.put(None)
        await asyncio.to_thread(thread.join)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
