"""What a worker re-checks between claiming a message and sending it: readers who left since
(unsubscribed, bounced, erased) and editions paused or cancelled since."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Edition, Subscriber, Subscription, utcnow
from newsletter.delivery.work import WorkItem, WorkKind
from newsletter.states import EditionStatus, SubscriberStatus

# Departures older than this are forgotten: anything claimed since then saw them at claim time.
FORGET_AFTER_SECONDS = 3600.0
# Changes are looked for a little before the last look, in case a change was stamped
# just before our previous query but committed just after it.
OVERLAP = timedelta(seconds=2)


class Refusal(StrEnum):
    """Why a claimed message is not to be sent now (delivery.decisions says what follows)."""

    EDITION_STOPPED = "edition stopped"  # paused or cancelled since it was claimed
    NOT_SUBSCRIBED = "no longer subscribed"
    NOT_PENDING = "no longer pending"  # a confirmation for a reader who confirmed or left
    LEFT_NEWSLETTER = "unsubscribed from this newsletter"


class Recheck:
    # Seconds between looks: the longest a departure can take to reach a claimed message.
    interval = 0.2

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._since = utcnow() - OVERLAP
        # Subscribers whose status changed since (their new status, monotonic time noted), and
        # who left one newsletter.
        self._changed: dict[int, tuple[str, float]] = {}
        self._left_newsletter: dict[tuple[int, str], float] = {}
        self._newsletters: set[str] = set()
        self._sending: set[int] = set()
        self._stopped: set[int] = set()

    def watch(self, newsletters: set[str | None]) -> None:
        self._newsletters.update(n for n in newsletters if n)

    def editions_sending(self, editions: set[int]) -> None:
        self._sending = set(editions)

    def edition_stopped(self, edition_id: int) -> None:
        """Known stopped now (this worker paused it); the next look confirms it, or sees it
        resumed."""
        self._stopped.add(edition_id)

    def refusal(self, item: WorkItem) -> Refusal | None:
        """None to send; else why not."""
        digest = item.kind is WorkKind.DIGEST
        if digest and item.edition_id in self._stopped:
            return Refusal.EDITION_STOPPED
        wanted = SubscriberStatus.ACTIVE if digest else SubscriberStatus.PENDING
        changed = self._changed.get(item.subscriber_id)
        if not item.eligible or item.email is None or (changed is not None and changed[0] != wanted):
            return Refusal.NOT_SUBSCRIBED if digest else Refusal.NOT_PENDING
        if item.newsletter_id and (item.subscriber_id, item.newsletter_id) in self._left_newsletter:
            return Refusal.LEFT_NEWSLETTER
        return None

    async def refresh(self) -> None:
        started = utcnow()
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**READ_ONLY)
            changed = (
                await conn.execute(
                    select(Subscriber.id, Subscriber.status).where(Subscriber.updated_at >= self._since)
                )
            ).all()
            if changed:
                await self._note_changes(conn, changed)
            self._forget_old()
            watched = self._sending | self._stopped
            if watched:
                rows = await conn.execute(select(Edition.id, Edition.status).where(Edition.id.in_(watched)))
                # Recomputed each time: an edition resumed since is sent again.
                self._stopped = {row.id for row in rows if row.status != EditionStatus.SENDING}
        self._since = started - OVERLAP

    def _forget_old(self) -> None:
        horizon = time.monotonic() - FORGET_AFTER_SECONDS
        self._changed = {k: v for k, v in self._changed.items() if v[1] >= horizon}
        self._left_newsletter = {k: t for k, t in self._left_newsletter.items() if t >= horizon}

    async def _note_changes(self, conn: AsyncConnection, changed: Sequence[Row[int, str]]) -> None:
        now = time.monotonic()
        active = []
        for subscriber_id, status in changed:
            self._changed[subscriber_id] = (status, now)
            if status == SubscriberStatus.ACTIVE:
                active.append(subscriber_id)
        if not active or not self._newsletters:
            return
        rows = await conn.execute(
            select(Subscription.subscriber_id, Subscription.newsletter_id).where(
                Subscription.subscriber_id.in_(active)
            )
        )
        subscribed = {(row.subscriber_id, row.newsletter_id) for row in rows}
        for subscriber_id in active:
            for newsletter_id in self._newsletters:
                pair = (subscriber_id, newsletter_id)
                if pair in subscribed:
                    self._left_newsletter.pop(pair, None)
                else:
                    self._left_newsletter[pair] = now
