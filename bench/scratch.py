"""Scratch databases for one case: a SQLite file or a fresh PostgreSQL database, with the config
file that the `newsletter` processes of the case read; a PostgreSQL one is dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from newsletter.config import Settings, load_settings

# Where to create bench_<random> databases: the first of these that is set, else the default.
POSTGRES_ENV = ("NEWSLETTER_BENCH_POSTGRES_URL", "NEWSLETTER_TEST_POSTGRES_URL")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")

CONFIG = """\
[site]
base_url = "https://londondaily.example"

[database]
url = "{url}"

[smtp]
host = "127.0.0.1"
list_unsubscribe_mailto = "leave@londondaily.example"

[security]
secret_key = "bench-secret-key-0123456789"
admin_token = "bench-admin-token-0123456789"

[logging]
level = "INFO"

[[newsletters]]
id = "daily"
name = "The Daily Briefing"
max_articles = 10
"""


def postgres_admin_url() -> str:
    return next((os.environ[name] for name in POSTGRES_ENV if os.environ.get(name)), DEFAULT_POSTGRES)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_missing() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    admin = postgres_admin_url()
    try:
        with psycopg.connect(_libpq(admin), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        where = make_url(admin).render_as_string(hide_password=True)
        return f"PostgreSQL unreachable at {where} ({str(exc).strip().splitlines()[0]})"
    return None


def postgres_version() -> str | None:
    try:
        with psycopg.connect(_libpq(postgres_admin_url()), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


@dataclass(frozen=True)
class Scratch:
    backend: str
    url: str
    folder: Path
    config: Path

    def settings(self) -> Settings:
        return load_settings(self.config)

    def env(self, **settings: str) -> dict[str, str]:
        """The environment of a `newsletter` process on this database; `settings` are
        NEWSLETTER_<SECTION>__<KEY> overrides given as section__key="value"."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env["NEWSLETTER_CONFIG"] = str(self.config)
        env["COLUMNS"] = "200"
        env.update({f"NEWSLETTER_{key.upper()}": value for key, value in settings.items()})
        return env


@contextmanager
def scratch(backend: str, folder: Path) -> Iterator[Scratch]:
    """An empty database (migrated by the first `newsletter` process or `open_context`)."""
    folder.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        database = folder / "newsletter.db"
        for leftover in (database, folder / "newsletter.db-wal", folder / "newsletter.db-shm"):
            leftover.unlink(missing_ok=True)
        yield _scratch(backend, f"sqlite:///{database}", folder)
        return
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = postgres_admin_url()
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
    try:
        yield _scratch(backend, url.render_as_string(hide_password=False), folder)
    finally:
        with psycopg.connect(_libpq(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _scratch(backend: str, url: str, folder: Path) -> Scratch:
    config = folder / "newsletter.toml"
    config.write_text(CONFIG.format(url=url))
    return Scratch(backend, url, folder, config)
