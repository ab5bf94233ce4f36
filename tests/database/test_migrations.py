from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from newsletter.config import DatabaseConfig
from newsletter.database import open_database
from newsletter.database.migrate import current_revision, head_revision, upgrade
from newsletter.database.models import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(database_url: str) -> None:
    db = open_database(DatabaseConfig(url=database_url))
    try:
        before, after = await upgrade(db)
        assert before == after == head_revision()  # already migrated: a no-op
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


async def test_upgrade_from_empty_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sub" / "dir" / "fresh.db"
    db = open_database(DatabaseConfig(url=f"sqlite:///{path}"))
    try:
        assert await current_revision(db) is None
        assert await upgrade(db) == (None, head_revision())
        assert await upgrade(db) == (head_revision(), head_revision())
        async with db.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
        assert mode == "wal"
        assert keys == 1
    finally:
        await db.dispose()
    assert path.is_file()
