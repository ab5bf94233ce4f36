"""An edition's variants as a reader sees them (a sample reader's fields filled in), and a test
copy of one to any address."""

from __future__ import annotations

import json
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from newsletter.context import AppContext
from newsletter.database.models import Article, Edition, EditionVariant, utcnow
from newsletter.delivery.smtp import SmtpReply
from newsletter.editions.preview import PREVIEW_ADDRESS
from newsletter.editions.trial import send_copy
from newsletter.errors import InvalidInput, NotFound
from newsletter.personal.recipients import PersonalMail
from newsletter.rendering.digest import RenderedEmail
from newsletter.rendering.placeholders import PersonalTokens


@dataclass(frozen=True)
class VariantPreview:
    id: int
    lead: str  # the lead story's title ("" for a variant with nothing new)
    subject: str
    articles: int
    text: str


async def variants(context: AppContext, edition_id: int) -> list[VariantPreview]:
    """Each variant's summary and text part (its HTML is filled only when its frame asks: html)."""
    edition, rows = await _variants(context, edition_id)
    fields = _sample_fields(context, edition)
    leads = await _leads(context, [_article_ids(row)[:1] for row in rows])
    return [_preview(row, _rendered(row), fields, leads) for row in rows]


async def html(context: AppContext, edition_id: int, variant_id: int) -> str:
    """One variant's HTML for the sample reader."""
    edition, row = await _variant(context, edition_id, variant_id)
    return _rendered(row).filled_html(_sample_fields(context, edition))


def _sample_fields(context: AppContext, edition: Edition) -> dict[str, str]:
    return dict(
        PersonalMail(context.settings).sample(PREVIEW_ADDRESS, edition.newsletter_id, "preview").fields
    )


async def _leads(context: AppContext, firsts: list[list[int]]) -> dict[int, str]:
    wanted = [ids[0] for ids in firsts if ids]
    if not wanted:
        return {}
    async with context.db.session() as session:
        rows = await session.execute(select(Article.id, Article.title).where(Article.id.in_(wanted)))
        return {article_id: title for article_id, title in rows.all()}


def _article_ids(row: EditionVariant) -> list[int]:
    return [int(n) for n in json.loads(row.article_ids or "[]")]


async def send_test(context: AppContext, edition_id: int, variant_id: int, email: str) -> SmtpReply:
    """A copy of one variant to `email` through the newsletter's first relay (nothing recorded)."""
    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput("email", str(exc)) from None
    edition, row = await _variant(context, edition_id, variant_id)
    newsletter = context.settings.newsletter(edition.newsletter_id)
    return await send_copy(context, newsletter, _rendered(row), address, utcnow())


async def _variants(context: AppContext, edition_id: int) -> tuple[Edition, list[EditionVariant]]:
    async with context.db.session() as session:
        edition = await session.get(Edition, edition_id)
        if edition is None:
            raise NotFound(f"edition {edition_id}")
        query = (
            select(EditionVariant).where(EditionVariant.edition_id == edition_id).order_by(EditionVariant.id)
        )
        return edition, list((await session.scalars(query)).all())


async def _variant(context: AppContext, edition_id: int, variant_id: int) -> tuple[Edition, EditionVariant]:
    async with context.db.session() as session:
        edition = await session.get(Edition, edition_id)
        row = await session.get(EditionVariant, variant_id)
    if edition is None or row is None or row.edition_id != edition_id:
        raise NotFound(f"edition {edition_id} has no variant {variant_id}")
    return edition, row


def _rendered(row: EditionVariant) -> RenderedEmail:
    return RenderedEmail(row.subject, row.html, row.text, PersonalTokens.stored(row.token_nonce))


def _preview(
    row: EditionVariant, rendered: RenderedEmail, fields: dict[str, str], leads: dict[int, str]
) -> VariantPreview:
    ids = _article_ids(row)
    return VariantPreview(
        id=row.id,
        lead=leads.get(ids[0], "") if ids else "",
        subject=row.subject,
        articles=len(ids),
        text=rendered.filled_text(fields),
    )
