"""Checking the SMTP relays without sending: connect, negotiate TLS, log in, and say what each
server offers (`newsletter smtp check`, `config check --connect`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from newsletter.config import Settings
from newsletter.config.sections import RelaySettings
from newsletter.delivery import decisions
from newsletter.delivery.smtp import SmtpSession, SmtpUnavailable

# The extensions an operator asks about first; the rest are listed as the server names them.
NOTABLE = ("size", "pipelining", "smtputf8", "8bitmime", "starttls", "auth")


@dataclass
class RelayCheck:
    relay: str
    key: str  # where it is configured: smtp, smtp.relays[1]
    server: str  # host:port
    security: str
    ok: bool
    error: str | None = None  # one line, naming the setting to fix where one is at fault
    tls: str | None = None
    logged_in_as: str | None = None
    offers: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "relay": self.relay,
            "key": self.key,
            "server": self.server,
            "security": self.security,
            "ok": self.ok,
            "error": self.error,
            "tls": self.tls,
            "logged_in_as": self.logged_in_as,
            "offers": self.offers,
        }


async def check_relay(relay: RelaySettings) -> RelayCheck:
    """Open a connection as a worker would (TLS and login included), note what the server
    offers, and close it; no message is sent."""
    config = relay.config
    checked = RelayCheck(relay.name, relay.key, f"{config.host}:{config.port}", config.security, ok=False)
    session = SmtpSession(config, key=relay.key)
    try:
        await session.open()
    except SmtpUnavailable as exc:
        checked.error = decisions.after_open_failure(exc).reason
        return checked
    try:
        checked.ok = True
        checked.tls = session.tls
        checked.logged_in_as = config.username or None
        checked.offers = session.offers
    finally:
        await session.close()
    return checked


async def check_relays(settings: Settings) -> list[RelayCheck]:
    """Every relay, checked at once."""
    return list(await asyncio.gather(*(check_relay(relay) for relay in settings.smtp.relay_settings())))
