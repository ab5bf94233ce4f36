"""What operators do with editions: start one now, see its progress, pause, resume, cancel."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from newsletter.bounces.queries import counts_for_edition
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Edition, utcnow
from newsletter.delivery import reports
from newsletter.editions import lifecycle
from newsletter.editions.builder import build_edition, open_edition
from newsletter.errors import InvalidInput, NotFound
from newsletter.logs import get_logger
from newsletter.rendering import DigestRenderer
from newsletter.states import LISTED_DELIVERIES, UNFINISHED, DeliveryStatus, EditionStatus

log = get_logger(__name__)


@dataclass
class EditionReport:
    id: int
    newsletter: str
    date: str
    sequence: int
    status: str
    trigger: str
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    # Bounces and complaints that came back after the relay accepted a message, by kind.
    returned: dict[str, int] = field(default_factory=dict)
    pause_reason: str | None = None
    # Sending stopped for a configuration fault (the setting to fix); it goes on once fixed.
    waiting_reason: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "started_at", "finished_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @property
    def failed(self) -> int:
        return self.counts.get(DeliveryStatus.FAILED, 0)

    @property
    def unfinished(self) -> int:
        return sum(self.counts.get(s, 0) for s in UNFINISHED)


async def start_edition(
    context: AppContext,
    newsletter_id: str | None,
    *,
    trigger: str = "manual",
    new: bool = False,
    now: datetime | None = None,
    renderer: DigestRenderer | None = None,
) -> Edition:
    """Build today's edition now, or continue today's if it exists (`new` for another one)."""
    newsletter = context.settings.find_newsletter(newsletter_id)
    edition, _ = await open_edition(context, newsletter, now=now or utcnow(), trigger=trigger, new=new)
    if edition.status == EditionStatus.BUILDING:
        edition = await build_edition(context, edition.id, renderer or DigestRenderer(context.settings))
    return edition


# The deliveries of an unfinished edition by status, counted by the caller's means (the
# console keeps a snapshot a second old rather than counting a million rows per request).
LiveCounts = Callable[[int], Awaitable[dict[str, int]]]


async def report(context: AppContext, edition_id: int, *, live: LiveCounts | None = None) -> EditionReport:
    async with context.db.session() as session:
        edition = await session.get(Edition, edition_id)
        if edition is None:
            raise NotFound(f"edition {edition_id}")
        counts = stored_counts(edition)
        if counts is None and live is None:
            conn = await session.connection()
            counts = await conn.run_sync(reports.edition_counts, edition_id)
        returned = await counts_for_edition(session, edition_id)
    if counts is None and live is not None:
        counts = await live(edition_id)
    return _report(edition, counts or {}, returned)


def stored_counts(edition: Edition) -> dict[str, int] | None:
    """A finished edition's counts as it kept them (None: count them)."""
    if not edition.final_counts:
        return None
    counts = {status.value: 0 for status in DeliveryStatus}
    counts.update({str(k): int(v) for k, v in json.loads(edition.final_counts).items()})
    return counts


def _report(
    edition: Edition, counts: dict[str, int], returned: dict[str, int] | None = None
) -> EditionReport:
    return EditionReport(
        id=edition.id,
        newsletter=edition.newsletter_id,
        date=edition.edition_date.isoformat(),
        sequence=edition.sequence,
        status=edition.status,
        trigger=edition.trigger,
        total=edition.total,
        counts=counts,
        returned=returned or {},
        pause_reason=edition.pause_reason,
        waiting_reason=edition.waiting_reason,
        created_at=edition.created_at,
        started_at=edition.started_at,
        finished_at=edition.finished_at,
    )


# What `deliveries` may list: a delivery status, or the rows whose failure was a bounce.
LISTABLE = LISTED_DELIVERIES


@dataclass
class DeliveryRow:
    id: int
    subscriber: int
    email: str | None
    status: str
    attempts: int
    code: int | None
    reply: str | None
    relay: str | None
    bounce: str | None
    updated_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data


@dataclass
class DeliveryPage:
    edition: int
    status: str
    page: int
    per_page: int
    total: int
    rows: list[DeliveryRow]

    def as_json(self) -> dict[str, Any]:
        return {
            "edition": self.edition,
            "status": self.status,
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "deliveries": [row.as_json() for row in self.rows],
        }


async def deliveries(
    context: AppContext, edition_id: int, *, status: str = "failed", page: int = 1, per_page: int = 50
) -> DeliveryPage:
    """One page of an edition's deliveries in `status` (LISTABLE), most recently changed first:
    why messages failed, are being retried or bounced."""
    if status not in LISTABLE:
        raise InvalidInput("status", f"{status!r} is not one of {', '.join(LISTABLE)}")
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(**READ_ONLY)
        if await conn.scalar(select(Edition.id).where(Edition.id == edition_id)) is None:
            raise NotFound(f"edition {edition_id}")
        total, rows = await conn.run_sync(
            reports.edition_deliveries,
            edition_id,
            status=status,
            offset=(page - 1) * per_page,
            limit=per_page,
        )
    listed = [
        DeliveryRow(
            row.id,
            row.subscriber_id,
            row.email,
            row.status,
            row.attempts,
            row.last_code,
            row.last_reply,
            row.relay,
            row.bounce,
            row.updated_at,
        )
        for row in rows
    ]
    return DeliveryPage(edition_id, status, page, per_page, total, listed)


async def list_reports(
    context: AppContext, *, limit: int = 50, before: int | None = None, live: LiveCounts | None = None
) -> list[EditionReport]:
    """The latest editions (below the id `before`, a page at a time) with their counts."""
    query = select(Edition).order_by(Edition.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Edition.id < before)
    async with context.db.session() as session:
        editions = (await session.scalars(query)).all()
        counting = [e.id for e in editions if e.final_counts is None and live is None]
        conn = await session.connection()
        counted = await conn.run_sync(reports.editions_counts, counting) if counting else {}
    found = []
    for edition in editions:
        counts = stored_counts(edition) or counted.get(edition.id)
        if counts is None and live is not None:
            counts = await live(edition.id)
        found.append(_report(edition, counts or {}))
    return found


async def resume(context: AppContext, edition_id: int) -> EditionReport:
    """Continue a paused edition (no more automatic pauses for it): back to sending, or to
    building when it was paused before it was ever built (a builder then builds it); a done one
    whose failures no server pronounced (a fault since fixed) sends those again. An edition
    still building is left to its builder (the sweep restarts one whose builder died)."""
    async with context.db.engine.begin() as conn:
        status = await conn.scalar(select(Edition.status).where(Edition.id == edition_id))
        if status is None:
            raise NotFound(f"edition {edition_id}")
        resumable = (EditionStatus.PAUSED, EditionStatus.BUILDING, EditionStatus.DONE)
        if status not in resumable:
            raise InvalidInput("edition", f"edition {edition_id} is {status}, not paused")
        moved = None
        if status != EditionStatus.BUILDING:
            moved = await conn.run_sync(lifecycle.resume, edition_id, now=utcnow())
        if status == EditionStatus.DONE and moved is None:
            raise InvalidInput("edition", f"edition {edition_id} is done: nothing to send again")
    log.info("edition.resumed", edition=edition_id)
    return await report(context, edition_id)


async def pause(context: AppContext, edition_id: int, reason: str) -> EditionReport:
    """Hold an edition that is building or sending (workers finish what they hold); resume
    continues it."""
    async with context.db.engine.begin() as conn:
        status = await conn.scalar(select(Edition.status).where(Edition.id == edition_id))
        if status is None:
            raise NotFound(f"edition {edition_id}")
        if not await conn.run_sync(lifecycle.pause, edition_id, reason):
            raise InvalidInput("edition", f"edition {edition_id} is {status}: only building or sending pause")
    log.info("edition.paused", edition=edition_id)
    return await report(context, edition_id)


async def cancel(context: AppContext, edition_id: int) -> EditionReport:
    """Stop further sends of an edition: what is not yet sent is skipped."""
    async with context.db.engine.begin() as conn:
        status = await conn.scalar(select(Edition.status).where(Edition.id == edition_id))
        if status is None:
            raise NotFound(f"edition {edition_id}")
        if not await conn.run_sync(lifecycle.cancel, edition_id, now=utcnow()):
            raise InvalidInput("edition", f"edition {edition_id} is already {status}")
    log.info("edition.cancelled", edition=edition_id)
    return await report(context, edition_id)
