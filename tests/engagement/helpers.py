"""Editions of tracked newsletters, sent for real, and their links."""

from __future__ import annotations

import email.message
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import select

from newsletter.context import AppContext
from newsletter.database.models import Click
from newsletter.editions.sending import drain
from newsletter.web import create_app
from tests.support.editions import Scenario, Setup
from tests.support.smtp import Mailbox

TrackedScenario = Callable[[dict[str, int]], Scenario]
BASE_URL = "https://news.londondaily.example"
READER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"}


@asynccontextmanager
async def sent(
    scenario: TrackedScenario, mode: str, tracking: dict[str, int] | None = None
) -> AsyncIterator[Setup]:
    newsletters = [{"id": "daily", "name": "London Daily Briefing", "tracking": mode, "utm_source": "nl"}]
    async with scenario(tracking or {"scanner_seconds": 0})(Mailbox(), 2, newsletters=newsletters) as s:
        await drain(s.context, editions={s.edition.id})
        yield s


@asynccontextmanager
async def web(context: AppContext, client: str = "198.51.100.7") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(context.settings, context), client=(client, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


def html_of(message: email.message.EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    content: str = body.get_content()
    return content


def story_links(s: Setup) -> list[list[str]]:
    """Each email's story links (the headlines'), in order."""
    found = []
    for received in s.handler.messages():
        html = html_of(received.message())
        found.append(re.findall(r'class="(?:lead|story)-title"[^>]*><a href="([^"]+)"', html))
    return found


async def clicks(context: AppContext) -> list[Click]:
    async with context.db.session() as session:
        return list((await session.scalars(select(Click).order_by(Click.id))).all())
