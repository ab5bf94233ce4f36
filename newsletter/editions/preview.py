"""The next digest of a newsletter as one reader would get it, built without recording anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import NewsletterConfig, Settings
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import Article, Subscriber, Subscription
from newsletter.database.sections import parse_sections
from newsletter.editions.selection import select_articles, window_start
from newsletter.errors import InvalidInput
from newsletter.personal.recipients import NOBODY, PersonalMail
from newsletter.personal.tokens import LinkOwner
from newsletter.rendering.digest import DigestRenderer
from newsletter.rendering.message import MessageTemplate

PREVIEW_ADDRESS = "reader@example.com"


@dataclass(frozen=True)
class Reader:
    owner: LinkOwner  # NOBODY when previewing for nobody in particular
    email: str
    sections: list[str]


@dataclass(frozen=True)
class Preview:
    html: str
    text: str
    eml: bytes
    subject: str
    articles: int
    would_send: bool  # False: no new articles and the newsletter does not send empty editions


async def find_reader(session: AsyncSession, newsletter: NewsletterConfig, email: str | None) -> Reader:
    """The subscriber behind --email (and their sections), or an anonymous reader."""
    if email is None:
        return Reader(NOBODY, PREVIEW_ADDRESS, [])
    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput("--email", str(exc)) from None
    subscriber = await session.scalar(select(Subscriber).where(Subscriber.email_key == address.lower()))
    if subscriber is None or subscriber.email is None:
        raise InvalidInput("--email", f"no subscriber with the address {email}")
    subscription = await session.get(Subscription, (subscriber.id, newsletter.id))
    if subscription is None:
        raise InvalidInput("--email", f"{email} is not subscribed to {newsletter.id}")
    owner = LinkOwner(subscriber.id, subscriber.token_nonce)
    return Reader(owner, subscriber.email, parse_sections(subscription.sections))


async def next_articles(
    session: AsyncSession, newsletter: NewsletterConfig, sections: Sequence[str], now: datetime
) -> list[Article]:
    await session.connection(execution_options=READ_ONLY)
    since = await window_start(session, newsletter, now)
    return await select_articles(session, newsletter, since=since, until=now, sections=sections)


def build_preview(
    settings: Settings,
    newsletter: NewsletterConfig,
    reader: Reader,
    articles: Sequence[Article],
    now: datetime,
) -> Preview:
    """Render (Jinja2 + premailer: CPU-heavy) and personalise for `reader`."""
    edition_date = now.astimezone(ZoneInfo(newsletter.timezone)).date()
    rendered = DigestRenderer(settings).render_digest(newsletter, edition_date, articles)
    recipient = PersonalMail(settings).sample(reader.email, newsletter.id, "preview", reader.owner)
    template = MessageTemplate.digest(settings, newsletter, rendered, date=now)
    message = template.build(recipient)
    return Preview(
        html=rendered.filled_html(recipient.fields),
        text=rendered.filled_text(recipient.fields),
        eml=message.data,
        subject=rendered.subject,
        articles=len(articles),
        would_send=bool(articles) or newsletter.send_when_empty,
    )
