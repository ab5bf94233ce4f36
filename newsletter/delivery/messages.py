"""Per-recipient message bytes for claimed work, from templates built once per variant."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import select

from newsletter.context import AppContext
from newsletter.database.models import Edition, EditionVariant, utcnow
from newsletter.delivery.ledger import WorkItem
from newsletter.rendering import (
    DigestRenderer,
    MessageTemplate,
    OutgoingMessage,
    PersonalTokens,
    Recipient,
    RenderedEmail,
    make_message_id,
)
from newsletter.subscriptions.links import Links
from newsletter.subscriptions.tokens import LinkOwner

MAX_CACHED_VARIANTS = 64
# Confirmation templates carry a Date header, so they are rebuilt this often.
CONFIRMATION_TEMPLATE_SECONDS = 3600


class MessageFactory:
    """Holds the templates of the variants a worker is sending; builds each message in microseconds."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.settings = context.settings
        self.links = Links(context.settings)
        self._variants: OrderedDict[int, MessageTemplate] = OrderedDict()
        self._confirmations: dict[str | None, tuple[float, MessageTemplate]] = {}
        self._renderer: DigestRenderer | None = None
        self._lock = asyncio.Lock()

    async def prepare(self, item: WorkItem) -> MessageTemplate:
        """The template for an item, loading (or rendering) it on first use."""
        if item.kind == "message":
            cached = self._confirmations.get(item.newsletter_id)
            if cached is not None and time.monotonic() - cached[0] < CONFIRMATION_TEMPLATE_SECONDS:
                return cached[1]
            return await self._load_confirmation(item.newsletter_id)
        assert item.variant_id is not None
        template = self._variants.get(item.variant_id)
        if template is None:
            template = await self._load_variant(item.variant_id)
        return template

    def build(self, item: WorkItem, template: MessageTemplate) -> OutgoingMessage:
        assert item.email is not None
        owner = LinkOwner(item.subscriber_id, item.nonce)
        if item.kind == "message":
            fields = {
                "confirm_url": self.links.confirm(owner, item.newsletter_id),
                "email": item.email,
            }
            message_id = make_message_id(self.settings, "c", item.id)
        else:
            fields = {
                "unsubscribe_url": self.links.unsubscribe(owner, item.newsletter_id),
                "preferences_url": self.links.preferences(owner),
                "email": item.email,
            }
            message_id = make_message_id(self.settings, "e", item.edition_id or 0, item.subscriber_id)
        return template.build(Recipient(email=item.email, message_id=message_id, fields=fields))

    async def _load_variant(self, variant_id: int) -> MessageTemplate:
        async with self._lock:
            if variant_id in self._variants:
                return self._variants[variant_id]
            async with self.context.db.session() as session:
                row = (
                    await session.execute(
                        select(EditionVariant, Edition)
                        .join(Edition, Edition.id == EditionVariant.edition_id)
                        .where(EditionVariant.id == variant_id)
                    )
                ).one()
            variant, edition = row
            newsletter = self.settings.newsletter(edition.newsletter_id)
            rendered = RenderedEmail(
                subject=variant.subject,
                html=variant.html,
                text=variant.text,
                tokens=PersonalTokens.stored(variant.token_nonce),
            )
            date: datetime = edition.started_at or edition.created_at
            template = await asyncio.to_thread(
                MessageTemplate.digest, self.settings, newsletter, rendered, date=date
            )
            self._variants[variant_id] = template
            while len(self._variants) > MAX_CACHED_VARIANTS:
                self._variants.popitem(last=False)
            return template

    async def _load_confirmation(self, newsletter_id: str | None) -> MessageTemplate:
        async with self._lock:
            cached = self._confirmations.get(newsletter_id)
            if cached is not None and time.monotonic() - cached[0] < CONFIRMATION_TEMPLATE_SECONDS:
                return cached[1]
            try:
                newsletter = self.settings.newsletter(newsletter_id) if newsletter_id else None
            except KeyError:
                newsletter = None
            if self._renderer is None:
                self._renderer = DigestRenderer(self.settings)
            renderer = self._renderer

            def render() -> MessageTemplate:
                rendered = renderer.render_confirmation(newsletter)
                return MessageTemplate.confirmation(self.settings, rendered, date=utcnow())

            template = await asyncio.to_thread(render)
            self._confirmations[newsletter_id] = (time.monotonic(), template)
            return template
