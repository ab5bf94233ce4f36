"""Alembic migrations shipped in the package, applied at start and by `db upgrade`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from newsletter.database.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (a test holds it to the scripts): a command that
# finds its database there needs no Alembic, whose import and script parse cost ~0.2 s a start.
HEAD = "0011"
# Arbitrary key of the PostgreSQL advisory lock that serialises concurrent upgrades.
UPGRADE_LOCK_KEY = 0x6E6C7573


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision, as Alembic reads it from the scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; return (before, after). Twice is a no-op."""
    if await _stored_revision(db) == HEAD:
        return HEAD, HEAD

    def _upgrade(connection: Connection) -> tuple[str | None, str]:
        from alembic import command

        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
            before = _current(connection)
            if before != head_revision():
                command.upgrade(alembic_config(connection), "head")
                if connection.dialect.name == "sqlite":
                    _check_foreign_keys(connection)
        return before, head_revision()

    async with db.engine.connect() as conn:
        if db.is_sqlite:
            return await conn.run_sync(_without_foreign_keys, _upgrade)
        return await conn.run_sync(_upgrade)


async def _stored_revision(db: Database) -> str | None:
    """The revision the database records, read without Alembic; None when there is no single
    one to read (a new database, say): Alembic's own path then decides."""
    try:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except DBAPIError:
        return None
    return rows[0] if len(rows) == 1 else None


def _without_foreign_keys(
    connection: Connection, work: Callable[[Connection], tuple[str | None, str]]
) -> tuple[str | None, str]:
    """SQLite rebuilds a table to alter it (Alembic's batch mode), and with foreign keys on,
    dropping the old copy of a table would cascade-delete every row that refers to it. The
    pragma only takes effect outside a transaction, so it is set on the driver's connection."""
    _pragma(connection, "foreign_keys=OFF")
    try:
        return work(connection)
    finally:
        _pragma(connection, "foreign_keys=ON")


def _pragma(connection: Connection, pragma: str) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration left rows referring to nothing: {broken[:5]}")
