"""Building an edition: one row per (newsletter, local date, sequence), its variants rendered
once each, and its deliveries enqueued inside the database."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Integer, String, and_, exists, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import NewsletterConfig
from newsletter.context import AppContext
from newsletter.database.models import (
    Delivery,
    Edition,
    EditionVariant,
    Subscriber,
    Subscription,
    UTCDateTime,
    utcnow,
)
from newsletter.database.sections import parse_sections
from newsletter.delivery.decisions import unbuildable
from newsletter.delivery.store import LEDGER
from newsletter.editions import lifecycle
from newsletter.editions.selection import narrowed, select_articles, window_start
from newsletter.engagement.tokens import ClickLinks, EditionTracking
from newsletter.errors import RenderError
from newsletter.logs import get_logger
from newsletter.rendering import DigestRenderer
from newsletter.rendering.archive_links import ArchiveLinks
from newsletter.rendering.content import time_label
from newsletter.rendering.digest import reader_zone
from newsletter.rendering.size import clipping_warning, html_bytes
from newsletter.states import DeliveryStatus, EditionStatus, SubscriberStatus

log = get_logger(__name__)

EMPTY_REASON = "no new articles for this reader's sections"


def local_date(newsletter: NewsletterConfig, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(newsletter.timezone)).date()


async def open_edition(
    context: AppContext,
    newsletter: NewsletterConfig,
    *,
    now: datetime,
    trigger: str,
    new: bool = False,
    day: date | None = None,
) -> tuple[Edition, bool]:
    """The day's edition of a newsletter (`day` in its timezone, default today), created if
    missing; `new` adds another one the same day. Two processes racing here get the same row:
    the unique constraint decides."""
    day = day or local_date(newsletter, now)
    async with context.db.session() as session:
        latest = await _latest(session, newsletter.id, day)
        if latest is not None and not new:
            return latest, False
        sequence = latest.sequence + 1 if latest is not None else 0
        since = await window_start(session, newsletter, now)
        try:
            edition_id = await session.run_sync(
                lambda sync: lifecycle.start(
                    sync.connection(),
                    newsletter_id=newsletter.id,
                    day=day,
                    sequence=sequence,
                    trigger=trigger,
                    since=since,
                    now=now,
                )
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            existing = await _latest(session, newsletter.id, day)
            assert existing is not None
            return existing, False
        edition = await session.get(Edition, edition_id)
        assert edition is not None
    log.info("edition.created", edition=edition.id, newsletter=newsletter.id, date=str(day), trigger=trigger)
    return edition, True


async def _latest(session: AsyncSession, newsletter_id: str, day: date) -> Edition | None:
    return await session.scalar(
        select(Edition)
        .where(Edition.newsletter_id == newsletter_id, Edition.edition_date == day)
        .order_by(Edition.sequence.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class Choice:
    """Subscribers of one newsletter who chose the same sections (and share a timezone)."""

    sections: str
    timezone: str | None


async def build_edition(context: AppContext, edition_id: int, renderer: DigestRenderer) -> Edition:
    """Render each distinct variant once and enqueue one delivery per active subscriber.

    Idempotent: run again after a crash, it adds only what is missing. Ends with the edition
    sending (or done at once when there is nobody to send to). A variant that cannot be
    rendered (an operator's template at fault) pauses the edition instead, with the reason:
    nothing is enqueued, its articles stay with it, and `resume` builds it again."""
    try:
        return await _build(context, edition_id, renderer)
    except RenderError as exc:
        return await _pause_unbuilt(context, edition_id, str(exc))


async def _pause_unbuilt(context: AppContext, edition_id: int, error: str) -> Edition:
    reason = unbuildable(error, edition_id)
    async with context.db.session() as session:
        await session.run_sync(lambda sync: lifecycle.pause(sync.connection(), edition_id, reason))
        await session.commit()
        edition = await session.get(Edition, edition_id)
    assert edition is not None
    log.error("edition.build_failed", edition=edition_id, error=error)
    return edition


async def _build(context: AppContext, edition_id: int, renderer: DigestRenderer) -> Edition:
    settings = context.settings
    async with context.db.session() as session:
        # One builder at a time: a second one waits here, then finds the edition built.
        edition = await session.get(Edition, edition_id, with_for_update=True)
        if edition is None or edition.status != EditionStatus.BUILDING:
            assert edition is not None, f"edition {edition_id} not found"
            return edition
        newsletter = settings.newsletter(edition.newsletter_id)
        choices = await _choices(session, newsletter)
        # A variant per choice of sections and timezone its times are shown in: readers who
        # gave none share the newsletter's.
        variants: dict[tuple[str, str], int | None] = {}
        for choice in choices:
            shown_in = (choice.sections, reader_zone(newsletter, choice.timezone).key)
            if shown_in not in variants:
                variants[shown_in] = await _variant(session, edition, newsletter, choice, renderer)
            await _enqueue(
                session, edition, newsletter, choice, variants[shown_in], settings.scheduler.grace_hours
            )
        total = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.edition_id == edition.id)
        )
        now = utcnow()
        count = int(total or 0)
        await session.run_sync(
            lambda sync: lifecycle.built(sync.connection(), edition_id, total=count, now=now)
        )
        await session.commit()
        await session.refresh(edition)
    log.info(
        "edition.enqueued", edition=edition.id, deliveries=edition.total, variants=len(set(variants.values()))
    )
    return edition


async def _choices(session: AsyncSession, newsletter: NewsletterConfig) -> list[Choice]:
    rows = await session.execute(
        select(Subscription.sections, Subscriber.timezone)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Subscription.newsletter_id == newsletter.id, Subscriber.status == SubscriberStatus.ACTIVE)
        .distinct()
    )
    return [Choice(sections, tz) for sections, tz in rows.all()]


async def _variant(
    session: AsyncSession,
    edition: Edition,
    newsletter: NewsletterConfig,
    choice: Choice,
    renderer: DigestRenderer,
) -> int | None:
    articles = await select_articles(
        session,
        newsletter,
        since=edition.since_at,
        until=edition.cutoff_at,
        sections=parse_sections(choice.sections),
    )
    if not articles and not newsletter.send_when_empty:
        return None
    ids = [a.id for a in articles]
    zone = reader_zone(newsletter, choice.timezone)
    # Zones that show these articles' times alike (New York and Toronto: EST) share a variant.
    times = [time_label(a.published_at, zone) if a.published_at else "" for a in articles]
    key = hashlib.sha256(json.dumps([ids, times]).encode()).hexdigest()[:32]
    existing = await session.scalar(
        select(EditionVariant.id).where(
            EditionVariant.edition_id == edition.id, EditionVariant.variant_key == key
        )
    )
    if existing is not None:
        return existing
    view_url = ArchiveLinks(renderer.settings).view_in_browser(
        newsletter,
        edition.id,
        edition.edition_date,
        edition.sequence,
        narrowed(newsletter, parse_sections(choice.sections)),
    )
    rendered = await asyncio.to_thread(
        renderer.render_digest,
        newsletter,
        edition.edition_date,
        articles,
        timezone=zone.key,
        view_url=view_url,
        tracking=None
        if newsletter.tracking == "off"
        else EditionTracking(ClickLinks(renderer.settings), newsletter, edition.id),
    )
    variant = EditionVariant(
        edition_id=edition.id,
        variant_key=key,
        article_ids=json.dumps(ids),
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        token_nonce=rendered.tokens.nonce,
    )
    session.add(variant)
    await session.flush()
    size = html_bytes(rendered.html)
    if caution := clipping_warning(size, what=f"edition {edition.id}'s variant {variant.id}"):
        log.warning("edition.large_html", edition=edition.id, variant=variant.id, bytes=size, warning=caution)
    return variant.id


async def _enqueue(
    session: AsyncSession,
    edition: Edition,
    newsletter: NewsletterConfig,
    choice: Choice,
    variant_id: int | None,
    grace_hours: float,
) -> None:
    """INSERT … SELECT: the database copies the subscriber list itself, however long it is."""
    now = utcnow()
    grace = timedelta(hours=grace_hours)
    # Due times are reckoned from the edition's own moment, so a rebuild gives the same ones.
    due = _due(newsletter, choice.timezone, edition.cutoff_at, grace) if variant_id is not None else now
    status, reply = (
        (DeliveryStatus.QUEUED, None) if variant_id is not None else (DeliveryStatus.SKIPPED, EMPTY_REASON)
    )
    timezone_matches = (
        Subscriber.timezone.is_(None) if choice.timezone is None else Subscriber.timezone == choice.timezone
    )
    source = (
        select(
            literal(edition.id, Integer),
            Subscriber.id,
            literal(variant_id, Integer),
            literal(status, String),
            literal(0, Integer),
            literal(due, UTCDateTime()),
            literal(now, UTCDateTime()),
            literal(reply, String),
        )
        .select_from(Subscription)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(
            Subscription.newsletter_id == newsletter.id,
            Subscription.sections == choice.sections,
            Subscriber.status == SubscriberStatus.ACTIVE,
            ~exists().where(and_(Delivery.edition_id == edition.id, Delivery.subscriber_id == Subscriber.id)),
            timezone_matches,
        )
    )
    columns = [
        "edition_id",
        "subscriber_id",
        "variant_id",
        "status",
        "attempts",
        "next_attempt_at",
        "updated_at",
        "last_reply",
    ]
    await session.run_sync(lambda sync: LEDGER.enqueue_edition(sync.connection(), source, columns))


def _due(newsletter: NewsletterConfig, timezone: str | None, now: datetime, grace: timedelta) -> datetime:
    """When a reader gets it: now, or for `deliver_at_local_time` the schedule's clock time in the
    reader's own timezone (the newsletter's when unknown): at once where that time passed less than
    `grace` ago, else when it next comes round — so everyone gets it once, within a day."""
    if not newsletter.deliver_at_local_time:
        return now
    zone = reader_zone(newsletter, timezone)
    trigger = CronTrigger.from_crontab(newsletter.schedule, timezone=zone)
    fire: datetime | None = trigger.get_next_fire_time(None, (now - grace).astimezone(zone))
    return max(fire, now) if fire is not None else now
