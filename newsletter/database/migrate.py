"""Alembic migrations shipped in the package, applied at start and by `db upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from newsletter.database.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
# Arbitrary key of the PostgreSQL advisory lock that serialises concurrent upgrades.
UPGRADE_LOCK_KEY = 0x6E6C7573


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; return (before, after). Twice is a no-op."""

    def _upgrade(connection: Connection) -> tuple[str | None, str]:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
        before = _current(connection)
        if before != head_revision():
            command.upgrade(alembic_config(connection), "head")
        return before, head_revision()

    async with db.engine.begin() as conn:
        return await conn.run_sync(_upgrade)
