"""Per-recipient message bytes for claimed work, from templates built once per variant."""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import select

from newsletter.context import AppContext
from newsletter.database.models import Edition, EditionVariant, utcnow
from newsletter.delivery.work import WorkItem, WorkKind
from newsletter.handoff import JobThreads
from newsletter.personal.recipients import PersonalMail
from newsletter.personal.tokens import LinkOwner
from newsletter.personal.verp import TagKind
from newsletter.rendering import (
    DigestRenderer,
    MessageTemplate,
    OutgoingMessage,
    PersonalTokens,
    RenderedEmail,
)
from newsletter.rendering.dkim import DkimSigner, PendingSignature

MAX_CACHED_VARIANTS = 64
# Confirmation templates carry a Date header, so they are rebuilt this often.
CONFIRMATION_TEMPLATE_SECONDS = 3600


class MessageFactory:
    """Holds the templates of the variants a worker is sending; builds each message in microseconds."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.settings = context.settings
        self.personal = PersonalMail(context.settings)
        # The key read and checked once, when the worker starts: a bad one is a configuration
        # error then (ConfigError naming dkim.private_key_file), not a failure of every message.
        self.signer = DkimSigner(context.settings.dkim) if context.settings.dkim.enabled else None
        # OpenSSL lets other threads run while it signs: a core beside the event loop's signs,
        # when there is one and the keys are slow enough to be worth the hop (DkimKey.slow).
        cores = os.cpu_count() or 1
        offload = self.signer is not None and self.signer.slow and cores > 1
        self._signing = JobThreads("dkim", cores - 1) if offload else None
        self._variants: OrderedDict[int, MessageTemplate] = OrderedDict()
        self._confirmations: dict[str | None, tuple[float, MessageTemplate]] = {}
        self._renderer: DigestRenderer | None = None
        self._lock = asyncio.Lock()

    async def prepare(self, item: WorkItem) -> MessageTemplate:
        """The template for an item, loading (or rendering) it on first use."""
        if item.kind is WorkKind.CONFIRMATION:
            cached = self._confirmations.get(item.newsletter_id)
            if cached is not None and time.monotonic() - cached[0] < CONFIRMATION_TEMPLATE_SECONDS:
                return cached[1]
            return await self._load_confirmation(item.newsletter_id)
        assert item.variant_id is not None
        template = self._variants.get(item.variant_id)
        if template is None:
            template = await self._load_variant(item.variant_id)
        return template

    async def build(self, item: WorkItem, template: MessageTemplate) -> OutgoingMessage:
        """The message for one recipient; ValueError for a value that cannot be sent. Its DKIM
        signatures are made here, or on the signing threads when they are slow (RSA)."""
        assert item.email is not None
        owner = LinkOwner(item.subscriber_id, item.nonce)
        if item.kind is WorkKind.CONFIRMATION:
            recipient = self.personal.confirmation(owner, item.email, item.newsletter_id, item.id)
        else:
            assert item.newsletter_id is not None and item.edition_id is not None
            recipient = self.personal.digest(owner, item.email, item.newsletter_id, item.edition_id, item.id)
        message, pending = template.for_smtp(recipient)
        if not pending:
            return message
        if self._signing is None:
            return message.signed(_completed(pending))
        return message.signed(await self._signing.run(lambda: _completed(pending)))

    async def close(self) -> None:
        """End the signing threads (once the signatures asked for are made)."""
        if self._signing is not None:
            await self._signing.close()

    def return_path(self, item: WorkItem) -> str:
        """The envelope sender: the row's VERP address with [bounces], else smtp.from_address."""
        kind = TagKind.MESSAGE if item.kind is WorkKind.CONFIRMATION else TagKind.DELIVERY
        return self.personal.bounce_tags.return_path(kind, item.id)

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
                MessageTemplate.digest, self.settings, newsletter, rendered, date=date, signer=self.signer
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
                return MessageTemplate.confirmation(
                    self.settings, rendered, date=utcnow(), signer=self.signer
                )

            template = await asyncio.to_thread(render)
            self._confirmations[newsletter_id] = (time.monotonic(), template)
            return template


def _completed(pending: list[PendingSignature]) -> bytes:
    return b"".join(signature.complete() for signature in pending)
