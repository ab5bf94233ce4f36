"""What the console's first page shows: next and last editions, readers, feeds."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from newsletter.bounces.queries import counts_for_edition
from newsletter.console.growth import Day, growth_svg, signups_per_day
from newsletter.console.progress import read_apart
from newsletter.console.snapshots import Snapshots
from newsletter.context import AppContext
from newsletter.database.models import Edition, FeedState, Subscriber, utcnow
from newsletter.delivery import reports
from newsletter.editions import service
from newsletter.editions.service import EditionReport, LiveCounts
from newsletter.scheduling.timing import trigger_for

RECENT_EDITIONS = 8
READERS_SECONDS = 60.0
RELAYS_SECONDS = 60.0
FAILURES_LOOKED_AT = 50


@dataclass(frozen=True)
class NextEdition:
    newsletter: str
    name: str
    at_local: datetime | None
    timezone: str


@dataclass(frozen=True)
class RecentEdition:
    report: EditionReport
    bounced: int


@dataclass(frozen=True)
class RelayView:
    name: str
    server: str  # host:port
    security: str  # none | starttls | tls
    weight: float
    rate_limit: float  # messages a second; 0: unlimited
    concurrency: int
    # What it carried of the latest edition sent: rows by status, and its latest failure.
    carried: dict[str, int] = field(default_factory=dict)
    last_failure: str = ""


@dataclass(frozen=True)
class Dashboard:
    upcoming: list[NextEdition]
    recent: list[RecentEdition]
    readers: dict[str, int]
    signups: list[Day]
    feeds: list[FeedState]
    relays: list[RelayView]

    @property
    def growth_svg(self) -> str:
        return growth_svg(self.signups)


async def dashboard(
    context: AppContext, snapshots: Snapshots, live: LiveCounts, apart: Engine | None = None
) -> Dashboard:
    """Readers and sign-ups are counted at most once a minute per process (a million rows each)."""
    return Dashboard(
        upcoming=upcoming(context),
        recent=await _recent(context, live),
        readers=await snapshots.get("readers", lambda: _readers(context), READERS_SECONDS),
        signups=await snapshots.get("signups", lambda: signups_per_day(context), READERS_SECONDS),
        feeds=await _feeds(context),
        relays=await snapshots.get("relays", lambda: relays(context, apart), RELAYS_SECONDS),
    )


async def relays(context: AppContext, apart: Engine | None = None) -> list[RelayView]:
    """The relays editions go through, as configured, with what each carried of the latest
    edition that went out (a million rows: read apart from the pages, once a minute)."""
    latest = await _latest_sent(context)
    carried: dict[str, dict[str, int]] = {}
    failures: list[Any] = []
    if latest is not None:
        carried = await read_apart(
            context, apart, functools.partial(reports.relay_activity, edition_id=latest)
        )
        recent = functools.partial(reports.latest_failures, edition_id=latest, limit=FAILURES_LOOKED_AT)
        failures = await read_apart(context, apart, recent)
    last = {}
    for row in reversed(failures):  # the newest wins
        last[row.relay] = f"{row.last_code or ''} {row.last_reply or ''}".strip()
    return [
        RelayView(
            name=relay.name,
            server=f"{relay.config.host}:{relay.config.port}",
            security=relay.config.security,
            weight=relay.weight,
            rate_limit=relay.config.rate_limit,
            concurrency=relay.config.concurrency,
            carried=carried.get(relay.name, {}),
            last_failure=last.get(relay.name, ""),
        )
        for relay in context.settings.smtp.relay_settings()
    ]


async def _latest_sent(context: AppContext) -> int | None:
    query = select(func.max(Edition.id)).where(Edition.started_at.is_not(None))
    async with context.db.session() as session:
        return await session.scalar(query)


def upcoming(context: AppContext, now: datetime | None = None) -> list[NextEdition]:
    now = now or utcnow()
    found = []
    for newsletter in context.settings.newsletters:
        fire = trigger_for(newsletter).get_next_fire_time(None, now)
        local = fire.astimezone(ZoneInfo(newsletter.timezone)) if fire is not None else None
        found.append(NextEdition(newsletter.id, newsletter.name, local, newsletter.timezone))
    return found


async def _recent(context: AppContext, live: LiveCounts) -> list[RecentEdition]:
    reports = await service.list_reports(context, limit=RECENT_EDITIONS, live=live)
    recent = []
    async with context.db.session() as session:
        for report in reports:
            returned = await counts_for_edition(session, report.id)
            recent.append(RecentEdition(report, sum(returned.values())))
    return recent


async def _readers(context: AppContext) -> dict[str, int]:
    query = select(Subscriber.status, func.count()).group_by(Subscriber.status)
    async with context.db.session() as session:
        return {status: int(n) for status, n in (await session.execute(query)).all()}


async def _feeds(context: AppContext) -> list[FeedState]:
    async with context.db.session() as session:
        return list((await session.scalars(select(FeedState).order_by(FeedState.feed_url))).all())
