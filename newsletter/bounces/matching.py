"""Which delivery a bounce is about: its VERP tag, else the X-Newsletter-Delivery header, else
one of our Message-IDs, else (only for a provider's authenticated report) its address.
Statements built once: a bounce storm runs them once per bounce."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, bindparam, select

from newsletter.bounces.incoming import Incoming
from newsletter.delivery.store import DELIVERIES, MESSAGES, SUBSCRIBERS
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTag, BounceTags, TagKind

_DELIVERY = select(DELIVERIES.c.edition_id, DELIVERIES.c.subscriber_id).where(
    DELIVERIES.c.id == bindparam("id")
)
_DELIVERY_OF = select(DELIVERIES.c.id, DELIVERIES.c.edition_id, DELIVERIES.c.subscriber_id).where(
    DELIVERIES.c.edition_id == bindparam("edition"), DELIVERIES.c.subscriber_id == bindparam("reader")
)
_MESSAGE = select(MESSAGES.c.subscriber_id).where(MESSAGES.c.id == bindparam("id"))
_BY_ADDRESS = select(SUBSCRIBERS.c.id).where(SUBSCRIBERS.c.email_key == bindparam("key"))


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

    def match(self, conn: Connection, incoming: Incoming) -> Match | None:
        for tag, how in self._tags(incoming):
            found = _row_of(conn, tag, how)
            if found is not None:
                return found
        found = self._by_message_id(conn, incoming.report.original_message_id)
        if found is not None:
            return found
        if incoming.trusted_recipient and incoming.report.recipient:
            return _by_address(conn, incoming.report.recipient)
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

    def _by_message_id(self, conn: Connection, message_id: str | None) -> Match | None:
        parts = self.message_ids.read(message_id)
        if parts is None:
            return None
        if parts[0] == "e" and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            row = conn.execute(
                _DELIVERY_OF, {"edition": int(parts[1]), "reader": int(parts[2])}
            ).one_or_none()
            if row is None:
                return None
            return Match(MatchedBy.MESSAGE_ID, row.subscriber_id, row.edition_id, delivery_id=row.id)
        if parts[0] == "c" and len(parts) == 2 and parts[1].isdigit():
            return _row_of(conn, BounceTag(TagKind.MESSAGE, int(parts[1])), MatchedBy.MESSAGE_ID)
        return None


def _row_of(conn: Connection, tag: BounceTag, how: MatchedBy) -> Match | None:
    if tag.kind is TagKind.DELIVERY:
        row = conn.execute(_DELIVERY, {"id": tag.row_id}).one_or_none()
        if row is None:
            return None
        return Match(how, row.subscriber_id, row.edition_id, delivery_id=tag.row_id)
    subscriber_id = conn.scalar(_MESSAGE, {"id": tag.row_id})
    if subscriber_id is None:
        return None
    return Match(how, subscriber_id, message_id=tag.row_id)


def _by_address(conn: Connection, address: str) -> Match | None:
    subscriber_id = conn.scalar(_BY_ADDRESS, {"key": address.lower()})
    return None if subscriber_id is None else Match(MatchedBy.ADDRESS, subscriber_id)
