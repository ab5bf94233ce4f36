"""Which delivery a bounce is about: its VERP tag, else the X-Newsletter-Delivery header, else
one of our Message-IDs, else (only for a provider's authenticated report) its address."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.bounces.incoming import Incoming
from newsletter.database.models import Delivery, Message, Subscriber
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTag, BounceTags, TagKind


class MatchedBy(StrEnum):
    VERP = "verp"
    HEADER = "header"
    MESSAGE_ID = "message-id"
    ADDRESS = "address"


@dataclass(frozen=True)
class Match:
    matched_by: MatchedBy
    subscriber_id: int
    edition_id: int | None = None
    delivery_id: int | None = None
    message_id: int | None = None  # an outbox row


class Matcher:
    def __init__(self, tags: BounceTags, message_ids: MessageIds) -> None:
        self.tags = tags
        self.message_ids = message_ids

    async def match(self, session: AsyncSession, incoming: Incoming) -> Match | None:
        for tag, how in self._tags(incoming):
            found = await _row_of(session, tag, how)
            if found is not None:
                return found
        found = await self._by_message_id(session, incoming.report.original_message_id)
        if found is not None:
            return found
        if incoming.trusted_recipient and incoming.report.recipient:
            return await _by_address(session, incoming.report.recipient)
        return None

    def _tags(self, incoming: Incoming) -> list[tuple[BounceTag, MatchedBy]]:
        report = incoming.report
        found: list[tuple[BounceTag, MatchedBy]] = []
        for address in (*incoming.envelope_recipients, report.original_sender):
            tag = self.tags.read_address(address)
            if tag is not None:
                found.append((tag, MatchedBy.VERP))
        for text in (report.delivery_header, *incoming.tags):
            tag = self.tags.read(text)
            if tag is not None:
                found.append((tag, MatchedBy.HEADER))
        return found

    async def _by_message_id(self, session: AsyncSession, message_id: str | None) -> Match | None:
        parts = self.message_ids.read(message_id)
        if parts is None:
            return None
        if parts[0] == "e" and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            row = (
                await session.execute(
                    select(Delivery.id, Delivery.edition_id, Delivery.subscriber_id).where(
                        Delivery.edition_id == int(parts[1]), Delivery.subscriber_id == int(parts[2])
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            return Match(MatchedBy.MESSAGE_ID, row.subscriber_id, row.edition_id, delivery_id=row.id)
        if parts[0] == "c" and len(parts) == 2 and parts[1].isdigit():
            return await _row_of(session, BounceTag(TagKind.MESSAGE, int(parts[1])), MatchedBy.MESSAGE_ID)
        return None


async def _row_of(session: AsyncSession, tag: BounceTag, how: MatchedBy) -> Match | None:
    if tag.kind is TagKind.DELIVERY:
        row = (
            await session.execute(
                select(Delivery.edition_id, Delivery.subscriber_id).where(Delivery.id == tag.row_id)
            )
        ).one_or_none()
        if row is None:
            return None
        return Match(how, row.subscriber_id, row.edition_id, delivery_id=tag.row_id)
    subscriber_id = await session.scalar(select(Message.subscriber_id).where(Message.id == tag.row_id))
    if subscriber_id is None:
        return None
    return Match(how, subscriber_id, message_id=tag.row_id)


async def _by_address(session: AsyncSession, address: str) -> Match | None:
    subscriber_id = await session.scalar(select(Subscriber.id).where(Subscriber.email_key == address.lower()))
    return None if subscriber_id is None else Match(MatchedBy.ADDRESS, subscriber_id)
