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


@asynccontextmanager
async def open_context(settings: Settings, *, migrate: bool = True) -> AsyncIterator[AppContext]:
    """Open the database (raising DatabaseUnavailable), bring its schema up to date."""
    db = open_database(settings.database)
    writer = LedgerWriter(settings.database, db.foreground)
    try:
        await db.ping()
        before = (await upgrade(db))[0] if migrate else ""
        yield AppContext(settings, db, created=before is None, writer=writer)
    finally:
        try:
            await writer.close()
        finally:  # even when closing the writer was cancelled: no connection left to the GC
            await db.dispose()
