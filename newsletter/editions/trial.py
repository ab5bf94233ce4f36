"""Trying an edition without recording anything: a dry run that renders and counts, and a test copy."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from newsletter.config import NewsletterConfig
from newsletter.context import AppContext
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Subscriber, Subscription, utcnow
from newsletter.database.sections import parse_sections
from newsletter.delivery.smtp import SmtpReply, SmtpSession
from newsletter.editions.selection import select_articles, window_start
from newsletter.personal.recipients import PersonalMail
from newsletter.rendering import DigestRenderer, MessageTemplate, OutgoingMessage, Recipient, RenderedEmail
from newsletter.rendering.size import html_bytes
from newsletter.states import SubscriberStatus


@dataclass(frozen=True)
class PlannedVariant:
    sections: list[str]
    recipients: int
    articles: int
    subject: str
    message_bytes: int
    html_bytes: int = 0  # the HTML part alone, as mail clients measure it (see rendering.size)

    @property
    def sends(self) -> bool:
        return self.message_bytes > 0


async def dry_run(
    context: AppContext, newsletter_id: str | None, *, now: datetime | None = None
) -> list[PlannedVariant]:
    """What `send` would do now: each group of readers, its articles, its rendered size."""
    newsletter = context.settings.find_newsletter(newsletter_id)
    now = now or utcnow()
    renderer = DigestRenderer(context.settings)
    planned: list[PlannedVariant] = []
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(**READ_ONLY)
        async with context.db.session(bind=conn) as session:
            since = await window_start(session, newsletter, now)
            groups = (
                await session.execute(
                    select(Subscription.sections, func.count())
                    .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                    .where(
                        Subscription.newsletter_id == newsletter.id,
                        Subscriber.status == SubscriberStatus.ACTIVE,
                    )
                    .group_by(Subscription.sections)
                )
            ).all()
            for sections, count in groups:
                chosen = parse_sections(sections)
                articles = await select_articles(session, newsletter, since=since, until=now, sections=chosen)
                size, subject, html = 0, "", 0
                if articles or newsletter.send_when_empty:
                    rendered = await asyncio.to_thread(
                        renderer.render_digest, newsletter, now.date(), articles
                    )
                    reader = PersonalMail(context.settings).sample(
                        "reader@example.com", newsletter.id, "dry-run"
                    )
                    sample = await asyncio.to_thread(_build_one, context, newsletter, rendered, now, reader)
                    size, subject, html = len(sample.data), rendered.subject, html_bytes(rendered.html)
                planned.append(PlannedVariant(chosen, int(count), len(articles), subject, size, html))
    return planned


async def send_test_copy(
    context: AppContext, newsletter_id: str | None, email: str, *, now: datetime | None = None
) -> SmtpReply:
    """Render the digest for every section and send one copy to `email`; record nothing."""
    newsletter = context.settings.find_newsletter(newsletter_id)
    now = now or utcnow()
    async with context.db.engine.connect() as conn:
        conn = await conn.execution_options(**READ_ONLY)
        async with context.db.session(bind=conn) as session:
            since = await window_start(session, newsletter, now)
            articles = await select_articles(session, newsletter, since=since, until=now)
    rendered = await asyncio.to_thread(
        DigestRenderer(context.settings).render_digest, newsletter, now.date(), articles
    )
    return await send_copy(context, newsletter, rendered, email, now)


async def send_copy(
    context: AppContext, newsletter: NewsletterConfig, rendered: RenderedEmail, email: str, now: datetime
) -> SmtpReply:
    """One copy of `rendered` to `email`, built as the edition builds its messages; nothing recorded."""
    tag = f"t.test.{int(now.timestamp())}"
    reader = PersonalMail(context.settings).sample(email, newsletter.id, tag)
    message = await asyncio.to_thread(_build_one, context, newsletter, rendered, now, reader)
    # Through the first relay the newsletter may use, as its edition would go.
    relays = {relay.name: relay for relay in context.settings.smtp.relay_settings()}
    relay = next((relays[name] for name in newsletter.relays if name in relays), next(iter(relays.values())))
    session_smtp = SmtpSession(relay.config, key=relay.key)
    await session_smtp.open()
    try:
        return await session_smtp.send(email, message.data, smtputf8=message.smtputf8)
    finally:
        await session_smtp.close()


def _build_one(
    context: AppContext,
    newsletter: NewsletterConfig,
    rendered: RenderedEmail,
    now: datetime,
    reader: Recipient,
) -> OutgoingMessage:
    """One message as the edition would build it, DKIM signature included (milliseconds of CPU:
    run off the event loop)."""
    return MessageTemplate.digest(context.settings, newsletter, rendered, date=now).build(reader)
