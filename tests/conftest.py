"""Fixtures: real databases (SQLite always, PostgreSQL when configured), real SMTP, the app."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter import eventloop
from newsletter.config import Settings, load_settings
from newsletter.context import AppContext, open_context
from newsletter.web import create_app
from tests.support.database import (
    POSTGRES_ENV,
    fresh_postgres_database,
    migrated_sqlite_template,
    postgres_admin_url,
    sqlite_copy,
    truncate_postgres,
)
from tests.support.editions import EditionFactory, Scenario, scenario_factory
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import reap_children
from tests.support.smtp import Mailbox, SmtpServer

ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef"


def pytest_configure(config: pytest.Config) -> None:
    # The SMTP servers run on threads of the test process: hand the GIL over quickly, or each
    # request and reply between them and the client waits out the default 5 ms switch interval.
    sys.setswitchinterval(0.0002)
    # The suite must not pick up an operator's configuration from the environment.
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != POSTGRES_ENV:
            del os.environ[name]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The async tests run on the loop every command runs on (uvloop's, where installed)."""
    factory = eventloop.loop_factory()
    return {"uvloop": factory} if factory is not None else {"asyncio": asyncio.new_event_loop}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The slow tests (a minute or two each) first, so that with several test processes
    # (pytest-xdist) they run beside the many short ones instead of after them, alone.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _reap_children() -> Iterator[None]:
    """Processes a test started (tests.support.process.start) end with it, pipes closed."""
    yield
    reap_children()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    with fresh_postgres_database(admin) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return sqlite_copy(template, tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    truncate_postgres(url)
    return url


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer(Mailbox()) as server:
        yield server


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> SettingsFactory:
    """Settings on the test database and SMTP server; keyword sections override."""

    def build(**sections: Any) -> Settings:
        empty = tmp_path / "empty.toml"
        empty.touch()
        overrides: dict[str, Any] = {
            "database": {"url": database_url},
            "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 5},
            "security": {"secret_key": SECRET_KEY, "admin_token": ADMIN_TOKEN},
            "delivery": {
                "retry_base_seconds": 0.05,
                "retry_max_seconds": 0.2,
                "idle_poll_seconds": 0.05,
            },
        }
        for section, values in sections.items():
            if isinstance(values, dict) and isinstance(overrides.get(section), dict):
                overrides[section] = {**overrides[section], **values}
            else:
                overrides[section] = values
        return load_settings(empty, overrides=overrides)

    return build


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def context(settings: Settings) -> AsyncIterator[AppContext]:
    async with open_context(settings) as opened:
        yield opened


@pytest.fixture
async def client(settings: Settings, context: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, context)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def scenario(make_settings: SettingsFactory) -> Scenario:
    return scenario_factory(make_settings)


@pytest.fixture
def edition_for(context: AppContext) -> EditionFactory:
    """`await edition_for(50)`: articles, 50 subscribers and today's edition, enqueued."""
    from newsletter.editions.service import start_edition

    async def make(subscribers: int, *, articles: int = 6, **subscriber_options: Any) -> Any:
        await add_articles(context, articles)
        await add_subscribers(context, subscribers, **subscriber_options)
        return await start_edition(context, "daily")

    return make
