"""Editions ready to send in tests, against a chosen SMTP server, and ledger reading helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from newsletter.config import Settings
from newsletter.context import AppContext, open_context
from newsletter.database.models import Delivery, Edition, Subscriber
from newsletter.editions.service import start_edition
from tests.support.factories import add_articles, add_subscribers
from tests.support.ports import free_port
from tests.support.smtp import Mailbox, SmtpServer

EditionFactory = Callable[..., Awaitable[Edition]]


@dataclass
class Setup:
    context: AppContext
    edition: Edition
    server: SmtpServer

    @property
    def handler(self) -> Mailbox:
        return self.server.handler


Scenario = Callable[..., AbstractAsyncContextManager[Setup]]


def scenario_factory(make_settings: Callable[..., Settings]) -> Scenario:
    """`async with scenario(handler, 30, smtp={...}) as s:` a server with that handler, settings
    pointing at it, articles, 30 subscribers and today's edition enqueued."""

    @asynccontextmanager
    async def setup(
        handler: Mailbox,
        subscribers: int,
        *,
        smtp: dict[str, Any] | None = None,
        delivery: dict[str, Any] | None = None,
        newsletters: list[dict[str, Any]] | None = None,
        articles: int = 6,
        server_up: bool = True,
        **subscriber_options: Any,
    ) -> AsyncIterator[Setup]:
        """With server_up=False the server is created on a free port but not started."""
        running = SmtpServer(handler, port=free_port())
        if server_up:
            running.start()
        try:
            sections: dict[str, Any] = {"smtp": {"port": running.port, **(smtp or {})}}
            if delivery:
                sections["delivery"] = delivery
            if newsletters:
                sections["newsletters"] = newsletters
            settings = make_settings(**sections)
            async with open_context(settings) as context:
                await add_articles(context, articles)
                await add_subscribers(context, subscribers, **subscriber_options)
                edition = await start_edition(context, "daily")
                yield Setup(context, edition, running)
        finally:
            running.stop()

    return setup


async def deliveries(context: AppContext, edition_id: int) -> list[Delivery]:
    async with context.db.session() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.edition_id == edition_id).order_by(Delivery.id)
        )
        return list(rows.all())


async def addresses(context: AppContext) -> dict[int, str]:
    async with context.db.session() as session:
        return {s.id: s.email or "" for s in (await session.scalars(select(Subscriber))).all()}
