"""A real Dovecot with one bounce mailbox, settings that read it over IMAP or POP3, and readers
with delivery rows whose VERP addresses the messages dropped into it carry."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import BounceEvent, Delivery, Subscriber
from newsletter.personal.verp import BounceTags, TagKind
from tests.conftest import SettingsFactory
from tests.support.editions import EditionFactory, deliveries
from tests.support.mta import Dovecot, dovecot_alone

USER = "bounces@readers.example"
PASSWORD = 'Qx7"mailbox-secret"'  # a quote: IMAP sends it escaped, which must not leak either
BOUNCE_DOMAIN = "bounce.londondaily.example"
WAIT_SECONDS = 20.0


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_alone({USER: PASSWORD}) as server:
        yield server


def mailbox_section(
    dovecot: Dovecot, protocol: str = "imap", security: str = "tls", **more: Any
) -> dict[str, Any]:
    """[bounces.mailbox] for the test Dovecot: its TLS or its plain (STARTTLS) port."""
    ports = {
        ("imap", "tls"): dovecot.imaps_port,
        ("imap", "starttls"): dovecot.imap_port,
        ("pop3", "tls"): dovecot.pop3s_port,
        ("pop3", "starttls"): dovecot.pop3_port,
    }
    return {
        "protocol": protocol,
        "host": "127.0.0.1",
        "port": ports[protocol, security],
        "security": security,
        "username": USER,
        "password": PASSWORD,
        "ca_file": str(dovecot.tls.ca),
        **more,
    }


@pytest.fixture
def settings(make_settings: SettingsFactory, dovecot: Dovecot) -> Settings:
    return make_settings(bounces={"domain": BOUNCE_DOMAIN, "mailbox": mailbox_section(dovecot)})


Reconfigure = Callable[..., AppContext]


@pytest.fixture
def reading(context: AppContext, make_settings: SettingsFactory, dovecot: Dovecot) -> Reconfigure:
    """`reading(protocol="pop3", security="starttls", batch_size=2)`: the context, on the same
    database, with another [bounces.mailbox]."""

    def build(**section: Any) -> AppContext:
        mailbox = mailbox_section(dovecot, **section)
        return dataclasses.replace(
            context, settings=make_settings(bounces={"domain": BOUNCE_DOMAIN, "mailbox": mailbox})
        )

    return build


@dataclass(frozen=True)
class Readers:
    """Delivery rows of today's edition, each with its reader and VERP address."""

    context: AppContext
    rows: list[Delivery]

    def verp(self, index: int) -> str:
        return BounceTags(self.context.settings).return_path(TagKind.DELIVERY, self.rows[index].id)

    def tag(self, index: int) -> str:
        return BounceTags(self.context.settings).tag(TagKind.DELIVERY, self.rows[index].id)

    async def statuses(self) -> list[str]:
        async with self.context.db.session() as session:
            ids = [row.subscriber_id for row in self.rows]
            found = {
                id_: status for id_, status in await session.execute(select(Subscriber.id, Subscriber.status))
            }
        return [str(found[subscriber_id]) for subscriber_id in ids]

    async def bounces(self) -> list[str | None]:
        async with self.context.db.session() as session:
            ids = [row.id for row in self.rows]
            found = {
                id_: bounce for id_, bounce in await session.execute(select(Delivery.id, Delivery.bounce))
            }
        return [found[delivery_id] for delivery_id in ids]


@pytest.fixture
async def readers(context: AppContext, edition_for: EditionFactory) -> Readers:
    edition = await edition_for(3)
    return Readers(context, await deliveries(context, edition.id))


async def events(context: AppContext) -> list[tuple[str, str, str | None, int | None]]:
    """Each recorded bounce event: kind, outcome, how it matched, its delivery row."""
    async with context.db.session() as session:
        rows = await session.scalars(select(BounceEvent).order_by(BounceEvent.id))
        return [(e.kind, e.outcome, e.matched_by, e.delivery_id) for e in rows.all()]


async def event_count(context: AppContext) -> int:
    async with context.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(BounceEvent)) or 0)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = WAIT_SECONDS) -> None:
    """Wait until `check()` holds; fail after `seconds` (a bound, not a measurement)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds} s")
        await asyncio.sleep(0.05)
