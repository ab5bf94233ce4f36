"""Following a tracked link: which article, whether the click counts, and where it leads."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from newsletter.config import NewsletterConfig
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Article, Delivery, Edition, utcnow
from newsletter.engagement.filtering import ClientWindow, bucket, classify
from newsletter.engagement.metrics import CLICKS
from newsletter.engagement.recorder import ClickRecorder
from newsletter.engagement.tokens import ClickLinks, ClickTarget
from newsletter.logs import get_logger
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.rendering.archive_links import ArchiveLinks
from newsletter.rendering.links import utm_parameters, web_url, with_utm

log = get_logger(__name__)

# How long an article's URL and its edition's facts are kept in memory.
TARGET_SECONDS = 300
TARGETS_KEPT = 20_000


@dataclass(frozen=True)
class _Target:
    newsletter: NewsletterConfig | None
    edition_started: datetime | None
    url: str  # "" when the article is gone
    archive_url: str


@dataclass(frozen=True)
class Followed:
    """Where a click leads: `url`, or (the article deleted since) nowhere, with the edition's
    page in the archive (or the site) to offer instead."""

    url: str
    elsewhere: str


class ClickDesk:
    """Built once per app."""

    def __init__(self, context: AppContext) -> None:
        assert context.writer is not None, "click recording needs the context's ledger thread"
        self.context = context
        settings = context.settings
        self.links = ClickLinks(settings)
        self.tags = BounceTags(settings)
        self.archive = ArchiveLinks(settings)
        self.recorder = ClickRecorder(context.ledger_lanes())
        self.window = ClientWindow(settings.tracking.max_clicks_per_minute)
        self._targets: OrderedDict[ClickTarget, tuple[float, _Target | None]] = OrderedDict()
        self._counters: dict[tuple[str, str, str], Any] = {}

    async def follow(
        self, token: str, reader: str | None, method: str, headers: Mapping[str, str], client: str
    ) -> Followed | None:
        """None for a forged or foreign token, or an edition that no longer exists."""
        target = self.links.read(token)
        if target is None:
            return None
        found = await self._target(target)
        if found is None:
            return None
        newsletter = found.newsletter
        if found.url and newsletter is not None and newsletter.tracking != "off":
            await self._count(target, found, newsletter, reader, method, headers, client, token)
        return Followed(found.url, found.archive_url)

    async def opened(self, reader: str, method: str, headers: Mapping[str, str]) -> None:
        """A per-reader open (the pixel): a lower bound, since some mail apps load every image."""
        delivery = await self._delivery(reader)
        if delivery is None:
            return
        newsletter = _configured(self.context, delivery.newsletter_id)
        if newsletter is None or newsletter.tracking != "per_reader":
            return
        after = _seconds_since(delivery.sent_at)
        row = _row("open", delivery.edition_id, None, classify(method, headers, None, 0), after)
        row.update(delivery_id=delivery.id, subscriber_id=delivery.subscriber_id)
        await self._write(row, newsletter.id)

    async def _count(
        self,
        target: ClickTarget,
        found: _Target,
        newsletter: NewsletterConfig,
        reader: str | None,
        method: str,
        headers: Mapping[str, str],
        client: str,
        token: str,
    ) -> None:
        sent_at = found.edition_started
        delivery = None
        if reader and newsletter.tracking == "per_reader":
            delivery = await self._delivery(reader)
            if delivery is not None and delivery.edition_id != target.edition_id:
                delivery = None  # another edition's reader: the click counts, for nobody
            if delivery is not None:
                sent_at = delivery.sent_at or sent_at
        after = _seconds_since(sent_at)
        reason = classify(method, headers, after, self.context.settings.tracking.scanner_seconds)
        # The same link again: per reader, each reader's own link is another link.
        reason = reason or self.window.check(client, f"{token}/{reader or ''}")
        row = _row("click", target.edition_id, target.article_id, reason, after)
        if delivery is not None:
            row.update(delivery_id=delivery.id, subscriber_id=delivery.subscriber_id)
        await self._write(row, newsletter.id)

    async def _write(self, row: dict[str, Any], newsletter_id: str) -> None:
        labels = (newsletter_id, row["kind"], "yes" if row["filtered"] is None else "no")
        counter = self._counters.get(labels)
        if counter is None:  # the labelled child, looked up once (labels() costs a lock and a hash)
            newsletter, kind, counted = labels
            counter = CLICKS.labels(newsletter=newsletter, kind=kind, counted=counted)
            self._counters[labels] = counter
        counter.inc()
        try:
            await self.recorder.record(row)
        except Exception as exc:  # the reader still gets the article; the loss is said
            log.error("clicks.not_recorded", kind=row["kind"], edition=row["edition_id"], error=str(exc))

    async def _target(self, target: ClickTarget) -> _Target | None:
        kept = self._targets.get(target)
        now = time.monotonic()
        if kept is not None and now - kept[0] < TARGET_SECONDS:
            return kept[1]
        found = await self._load(target)
        self._targets[target] = (now, found)
        self._targets.move_to_end(target)
        while len(self._targets) > TARGETS_KEPT:
            self._targets.popitem(last=False)
        return found

    async def _load(self, target: ClickTarget) -> _Target | None:
        async with self.context.db.session() as session:
            await session.connection(execution_options=READ_ONLY)
            edition = await session.get(Edition, target.edition_id)
            if edition is None:
                return None
            article = await session.get(Article, target.article_id)
        newsletter = _configured(self.context, edition.newsletter_id)
        url = web_url(article.url) if article is not None else ""
        if url and newsletter is not None:
            url = with_utm(url, utm_parameters(newsletter))
        archive_url = self.context.settings.site.base_url + "/"
        if newsletter is not None and newsletter.archive != "off":
            archive_url = self.archive.edition_url(
                newsletter, edition.id, edition.edition_date, edition.sequence
            )
        return _Target(newsletter, edition.started_at, url, archive_url)

    async def _delivery(self, reader: str) -> _Delivery | None:
        tag = self.tags.read(reader)
        if tag is None or tag.kind is not TagKind.DELIVERY:
            return None
        async with self.context.db.session() as session:
            await session.connection(execution_options=READ_ONLY)
            found = (
                await session.execute(
                    select(
                        Delivery.edition_id, Delivery.subscriber_id, Delivery.sent_at, Edition.newsletter_id
                    )
                    .join(Edition, Edition.id == Delivery.edition_id)
                    .where(Delivery.id == tag.row_id)
                )
            ).first()
        if found is None:
            return None
        return _Delivery(tag.row_id, found[0], found[1], found[2], found[3])


@dataclass(frozen=True)
class _Delivery:
    id: int
    edition_id: int
    subscriber_id: int
    sent_at: datetime | None
    newsletter_id: str


def _configured(context: AppContext, newsletter_id: str) -> NewsletterConfig | None:
    return next((n for n in context.settings.newsletters if n.id == newsletter_id), None)


def _seconds_since(moment: datetime | None) -> float | None:
    return (utcnow() - moment).total_seconds() if moment is not None else None


def _row(
    kind: str, edition_id: int, article_id: int | None, reason: str | None, after: float | None
) -> dict[str, Any]:
    return {
        "at": utcnow(),
        "kind": kind,
        "edition_id": edition_id,
        "article_id": article_id,
        "filtered": reason,
        "after_send_seconds": bucket(after),
        "delivery_id": None,
        "subscriber_id": None,
    }
