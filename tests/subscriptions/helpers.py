"""Shared by the subscription tests: read the database, read confirmation emails, sign old tokens."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from itsdangerous import Signer, TimestampSigner
from sqlalchemy import func, select

from newsletter.config import Settings
from newsletter.context import AppContext, open_context
from newsletter.database.models import Base, Event, Message, Subscriber, Subscription
from newsletter.editions.sending import drain
from newsletter.personal.tokens import LinkOwner
from newsletter.web import create_app
from tests.conftest import SECRET_KEY
from tests.support.smtp import SmtpServer

M = TypeVar("M", bound=Base)

CONFIRM_LINK = re.compile(r"https?://\S+/confirm/[A-Za-z0-9._-]+")


async def all_rows(context: AppContext, model: type[M]) -> Sequence[M]:
    async with context.db.session() as session:
        return (await session.scalars(select(model))).all()


async def count(context: AppContext, model: type[Base]) -> int:
    async with context.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def subscriber(context: AppContext, email_key: str) -> Subscriber | None:
    async with context.db.session() as session:
        return await session.scalar(select(Subscriber).where(Subscriber.email_key == email_key))


async def choices(context: AppContext, subscriber_id: int) -> dict[str, str]:
    async with context.db.session() as session:
        rows = await session.execute(
            select(Subscription.newsletter_id, Subscription.sections).where(
                Subscription.subscriber_id == subscriber_id
            )
        )
        return {newsletter_id: sections for newsletter_id, sections in rows.all()}


async def events(context: AppContext, kind: str | None = None) -> Sequence[Event]:
    async with context.db.session() as session:
        query = select(Event).order_by(Event.id)
        return (await session.scalars(query.where(Event.kind == kind) if kind else query)).all()


async def outbox(context: AppContext) -> Sequence[Message]:
    async with context.db.session() as session:
        return (await session.scalars(select(Message).order_by(Message.id))).all()


async def nothing_stored(context: AppContext) -> bool:
    return all([await count(context, model) == 0 for model in (Subscriber, Subscription, Message, Event)])


async def confirmation_links(context: AppContext, smtp_server: SmtpServer) -> dict[str, str]:
    """Deliver the outbox now; recipient → the confirm URL path from its email's text part."""
    await drain(context)
    links: dict[str, str] = {}
    for received in smtp_server.handler.messages():
        text = received.message().get_body(("plain",))
        assert text is not None
        match = CONFIRM_LINK.search(text.get_content())
        assert match is not None, "no confirm link in the confirmation email"
        for recipient in received.rcpt_tos:
            links[recipient] = urlsplit(match.group(0)).path
    return links


async def owner(context: AppContext, subscriber_id: int) -> LinkOwner:
    """Whom a link for this subscriber must name: its id and its link nonce."""
    async with context.db.session() as session:
        stored = await session.get(Subscriber, subscriber_id)
    assert stored is not None, f"no subscriber {subscriber_id}"
    return LinkOwner(stored.id, stored.token_nonce)


def signed_at(
    purpose: str, payload: str, seconds_ago: float, *, secret_key: str = SECRET_KEY, timed: bool = True
) -> str:
    """A genuine token of `purpose` as it would have been signed `seconds_ago` (or, not `timed`,
    by the plain signer that signed unsubscribe and, once, preferences tokens)."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - seconds_ago)

    signer = Backdated(secret_key, salt=f"newsletter.{purpose}") if timed else None
    plain = Signer(secret_key, salt=f"newsletter.{purpose}")
    return (signer or plain).sign(payload).decode("ascii")


def confirm_token_signed_at(link_owner: LinkOwner, seconds_ago: float) -> str:
    """A genuine confirm token as it would have been signed `seconds_ago`."""
    return signed_at("confirm", f"{link_owner.subscriber_id}.{link_owner.nonce}", seconds_ago)


def form(**fields: Any) -> dict[str, Any]:
    return {"website": "", **fields}


@asynccontextmanager
async def serve(
    settings: Settings, ip: str = "203.0.113.7"
) -> AsyncIterator[tuple[httpx.AsyncClient, AppContext]]:
    """An app (and its own context) on these settings, with an in-process client from `ip`."""
    async with open_context(settings) as context:
        app = create_app(settings, context)
        transport = httpx.ASGITransport(app=app, client=(ip, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, context
