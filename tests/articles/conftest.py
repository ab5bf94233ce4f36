"""Fixtures for article tests: a real feed server and app contexts with chosen settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from newsletter.context import AppContext, open_context
from tests.conftest import SettingsFactory
from tests.support.http import FeedServer

ContextFactory = Callable[..., Awaitable[AppContext]]


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
async def make_context(make_settings: SettingsFactory) -> AsyncIterator[ContextFactory]:
    """An AppContext on the test database with sections overridden, e.g. ingest={"timeout": 0.5}."""
    async with AsyncExitStack() as stack:

        async def build(**sections: Any) -> AppContext:
            return await stack.enter_async_context(open_context(make_settings(**sections)))

        yield build
