from __future__ import annotations

import asyncio
import subprocess
import sys

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text

from newsletter.config import DatabaseConfig, load_settings
from newsletter.database import open_database
from newsletter.database.migrate import HEAD, alembic_config, head_revision, upgrade
from newsletter.database.models import Base, Subscriber, Subscription
from newsletter.personal.links import token_signer
from newsletter.personal.tokens import Purpose, owns
from tests.subscriptions.helpers import signed_at
from tests.support.process import clean_environment


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


def test_the_stored_head_is_the_scripts_head() -> None:
    assert head_revision() == HEAD, "a new migration: set newsletter.database.migrate.HEAD to it"


# Opens an up-to-date database as every command does, then says whether Alembic was loaded.
_START = """
import asyncio, sys
from newsletter.config import DatabaseConfig
from newsletter.database import open_database
from newsletter.database.migrate import upgrade

async def start() -> None:
    db = open_database(DatabaseConfig(url=sys.argv[1]))
    try:
        print(await upgrade(db), "alembic" in sys.modules)
    finally:
        await db.dispose()

asyncio.run(start())
"""


async def test_a_start_on_an_up_to_date_database_does_without_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'current.db'}"
    db = open_database(DatabaseConfig(url=url))
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    command = [sys.executable, "-c", _START, url]
    started = await asyncio.to_thread(
        subprocess.run, command, env=clean_environment(), capture_output=True, text=True, check=True
    )
    assert started.stdout.split() == [f"('{HEAD}',", f"'{HEAD}')", "False"]


async def test_upgrade_from_empty_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sub" / "dir" / "fresh.db"
    db = open_database(DatabaseConfig(url=f"sqlite:///{path}"))
    try:
        assert await upgrade(db) == (None, head_revision())  # None: nothing was there before
        assert await upgrade(db) == (head_revision(), head_revision())
        async with db.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
        assert mode == "wal"
        assert keys == 1
    finally:
        await db.dispose()
    assert path.is_file()


async def test_0003_keeps_every_row_and_the_old_links_of_existing_readers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """0003 rebuilds SQLite's subscribers table (for AUTOINCREMENT): with foreign keys on, dropping
    the old copy would have cascade-deleted every subscription. Readers subscribed before it keep
    their old (nonce-less) unsubscribe links; readers after it do not get such links honoured."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = open_database(DatabaseConfig(url=url))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0002"))
            for n in (1, 2, 3):
                await conn.execute(
                    text(
                        "INSERT INTO subscribers (id, email, email_key, status, source, hard_bounces,"
                        " created_at, updated_at) VALUES (:n, :e, :e, 'active', 'test', 0, :t, :t)"
                    ),
                    {"n": n, "e": f"old{n}@example.com", "t": "2026-11-01 00:00:00"},
                )
                await conn.execute(
                    text(
                        "INSERT INTO subscriptions (subscriber_id, newsletter_id, sections, created_at,"
                        " updated_at) VALUES (:n, 'daily', '[]', :t, :t)"
                    ),
                    {"n": n, "t": "2026-11-01 00:00:00"},
                )
            await conn.execute(text("DELETE FROM subscriptions WHERE subscriber_id = 3"))
            await conn.execute(text("DELETE FROM subscribers WHERE id = 3"))
        assert await upgrade(db) == ("0002", head_revision())
        async with db.session() as session:
            subscribers = (await session.scalars(select(Subscriber).order_by(Subscriber.id))).all()
            kept = (await session.scalars(select(Subscription.subscriber_id))).all()
            session.add(Subscriber(email="new@example.com", email_key="new@example.com", status="active"))
            await session.commit()
            newest = await session.scalar(select(Subscriber).where(Subscriber.email_key == "new@example.com"))
        assert sorted(kept) == [1, 2]
        assert [s.legacy_links for s in subscribers] == [True, True]
        assert len({s.token_nonce for s in subscribers}) == 2
        assert newest is not None and newest.id == 3 and not newest.legacy_links
        empty = tmp_path / "empty.toml"
        empty.touch()
        signer = token_signer(
            load_settings(empty, overrides={"security": {"secret_key": "s" * 8 + "ecret-key-1"}})
        )
        legacy = signer.verify(
            Purpose.UNSUBSCRIBE,
            signed_at("unsubscribe", "3.daily", 0, secret_key="s" * 8 + "ecret-key-1", timed=False),
        )
        # A link signed for the old subscriber 3 (deleted before the upgrade) does not act for
        # the new subscriber who, this once, got the same id.
        assert not owns(legacy, nonce=newest.token_nonce, legacy_links=newest.legacy_links)
        assert owns(legacy, nonce=subscribers[0].token_nonce, legacy_links=True)
    finally:
        await db.dispose()
