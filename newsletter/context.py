"""The running service's shared parts: settings and database, opened once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.database import Database, open_database
from newsletter.database.migrate import upgrade
from newsletter.database.writer import LedgerWriter


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: Database
    # The database had no schema when opened: this process made it.
    created: bool = False
    # Short synchronous transactions off the event loop (bounce reports): a thread of its own,
    # started on first use and closed with the context.
    writer: LedgerWriter | None = None
    # PostgreSQL only: a second such thread, for work that needs no order with the first's
    # (clicks), so that two transactions can commit at once. SQLite writes one at a time.
    second_writer: LedgerWriter | None = None

    def ledger_lanes(self) -> list[LedgerWriter]:
        """The ledger threads that unordered work may spread over."""
        return [w for w in (self.writer, self.second_writer) if w is not None]


@asynccontextmanager
async def open_context(settings: Settings, *, migrate: bool = True) -> AsyncIterator[AppContext]:
    """Open the database (raising DatabaseUnavailable), bring its schema up to date."""
    db = open_database(settings.database)
    writer = LedgerWriter(settings.database, db.foreground)
    second = None if db.is_sqlite else LedgerWriter(settings.database, db.foreground)
    try:
        await db.ping()
        before = (await upgrade(db))[0] if migrate else ""
        yield AppContext(settings, db, created=before is None, writer=writer, second_writer=second)
    finally:
        try:
            try:
                await writer.close()
            finally:
                if second is not None:
                    await second.close()
        finally:  # even when closing a writer was cancelled: no connection left to the GC
            await db.dispose()
