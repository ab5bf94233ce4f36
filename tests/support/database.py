"""Fresh databases for tests: a migrated SQLite file per test, a fresh PostgreSQL database per run."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from newsletter.config import DatabaseConfig
from newsletter.database import open_database
from newsletter.database.migrate import upgrade
from newsletter.database.models import Base

POSTGRES_ENV = "NEWSLETTER_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def migrate(url: str) -> None:
    async def run() -> None:
        db = open_database(DatabaseConfig(url=url))
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(run())


def migrated_sqlite_template(folder: Path) -> Path:
    path = folder / "template.db"
    migrate(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, folder: Path) -> str:
    target = folder / "newsletter.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """CREATE DATABASE nl_test_<random> next to the given one; DROP it afterwards."""
    name = f"nl_test_{uuid.uuid4().hex[:12]}"
    admin = libpq(admin_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        migrate(rendered)
        yield rendered
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_postgres(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
