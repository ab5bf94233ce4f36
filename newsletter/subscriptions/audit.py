"""The consent and audit log: who did what to a subscription, when, and from where."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.database.models import Event, utcnow

SIGNUP = "signup"
CONFIRM = "confirm"
PREFERENCES = "preferences"
UNSUBSCRIBE = "unsubscribe"
ERASURE = "erasure"
IMPORT = "import"
EXPIRY = "expiry"

MAX_USER_AGENT = 300
MAX_IP = 64


@dataclass(frozen=True)
class Actor:
    """Where an action came from: the reader's browser (ip, user agent), the API or the CLI."""

    source: str = "web"  # web | api | cli | import | system
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def web(cls, ip: str | None, user_agent: str | None) -> Actor:
        agent = "".join(c for c in user_agent if c.isprintable())[:MAX_USER_AGENT] if user_agent else None
        return cls("web", ip[:MAX_IP] if ip else None, agent or None)


def event_row(
    kind: str,
    subscriber_id: int | None,
    actor: Actor,
    *,
    newsletter_id: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An events row as plain values, for bulk inserts."""
    return {
        "at": at or utcnow(),
        "kind": kind,
        "subscriber_id": subscriber_id,
        "newsletter_id": newsletter_id,
        "ip": actor.ip,
        "user_agent": actor.user_agent,
        "detail": json.dumps({"source": actor.source, **(detail or {})}, ensure_ascii=False, sort_keys=True),
    }


def record(
    session: AsyncSession,
    kind: str,
    subscriber_id: int | None,
    actor: Actor,
    *,
    newsletter_id: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Event:
    """Add an event to the caller's transaction; it commits with the change it records."""
    event = Event(**event_row(kind, subscriber_id, actor, newsletter_id=newsletter_id, detail=detail, at=at))
    session.add(event)
    return event


async def scrub(session: AsyncSession, subscriber_id: int) -> None:
    """Remove the personal data (IP, user agent, details) from a subscriber's events."""
    await session.execute(
        update(Event)
        .where(Event.subscriber_id == subscriber_id)
        .values(ip=None, user_agent=None, detail=None),
        execution_options={"synchronize_session": False},
    )
