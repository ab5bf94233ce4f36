"""The console's fixtures: an app with three accounts (olivia owner, eddie editor, vera viewer),
and `browser(address)`: clients with cookies of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from newsletter.console import accounts
from newsletter.console.accounts import Role
from newsletter.context import AppContext
from newsletter.web import create_app
from tests.console.helpers import PASSWORD, Client


@pytest.fixture
async def app(context: AppContext) -> FastAPI:
    for name, role in (("olivia", Role.OWNER), ("eddie", Role.EDITOR), ("vera", Role.VIEWER)):
        await accounts.add(context, name, PASSWORD, role)
    return create_app(context.settings, context)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[Client]:
    """`browser(address)`: a client with its own cookies, coming from `address`."""
    opened: list[httpx.AsyncClient] = []

    def make(address: str = "203.0.113.7") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://localhost:8000")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()
