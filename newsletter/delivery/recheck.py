"""What a worker re-checks between claiming a message and sending it: readers who left since
(unsubscribed, bounced, erased) and editions paused or cancelled since."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Edition, Subscriber, Subscription, utcnow
from newsletter.delivery.decisions import RECHECK_RELEASE
from newsletter.delivery.work import WorkItem, WorkKind
from newsletter.states import EditionStatus, SubscriberStatus

# Departures older than this are forgotten: anything claimed since then saw them at claim time.
FORGET_AFTER_SECONDS = 3600.0
# Changes are looked for a little before the last look, in case a change was stamped
# just before our previous query but committed just after it.
OVERLAP = timedelta(seconds=2)


class Recheck:
    # Seconds between looks: the longest a departure can take to reach a claimed message.
    interval = 0.2

    def __init__(self, context: AppContext) -> None:
        self.context = context
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
        self._stopped.add(edition_id)

    def refusal(self, item: WorkItem) -> str | None:
        """None to send; RECHECK_RELEASE to hand the item back untried; else why it is skipped
        (delivery.decisions.after_refusal says what follows)."""
        digest = item.kind is WorkKind.DIGEST
        if digest and item.edition_id in self._stopped:
            return RECHECK_RELEASE
        wanted = SubscriberStatus.ACTIVE if digest else SubscriberStatus.PENDING
        changed = self._changed.get(item.subscriber_id)
        if not item.eligible or item.email is None or (changed is not None and changed[0] != wanted):
            return "no longer subscribed" if digest else "no longer pending"
        if item.newsletter_id and (item.subscriber_id, item.newsletter_id) in self._left_newsletter:
            return "unsubscribed from this newsletter"
        return None

    async def refresh(self) -> None:
        started = utcnow()
        async with self.context.db.engine.connect() as conn:
            conn = await conn.execution_options(**READ_ONLY)
            changed = (
                await conn.execute(
                    select(Subscriber.id, Subscriber.status).where(Subscriber.updated_at >= self._since)
                )
            ).all()
            if changed:
                await self._note_changes(conn, changed)
            self._forget_old()
            if self._sending:
                rows = await conn.execute(
                    select(Edition.id, Edition.status).where(Edition.id.in_(self._sending))
                )
                self._stopped.update(row.id for row in rows if row.status != EditionStatus.SENDING)
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
