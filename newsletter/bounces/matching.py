"""Which delivery a bounce is about: its VERP tag, else the X-Newsletter-Delivery header, else
one of our Message-IDs, else (only for a provider's authenticated report) its address.
Statements compiled once: a bounce storm runs them once per bounce."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, bindparam, select

from newsletter.bounces.incoming import Incoming
from newsletter.database.compiled import Compiled
from newsletter.delivery.store import DELIVERIES, MESSAGES, SUBSCRIBERS
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTag, BounceTags, TagKind

_DELIVERY = Compiled(
    select(DELIVERIES.c.edition_id, DELIVERIES.c.subscriber_id).where(DELIVERIES.c.id == bindparam("b_id"))
)
_DELIVERY_OF = Compiled(
    select(DELIVERIES.c.id, DELIVERIES.c.edition_id, DELIVERIES.c.subscriber_id).where(
        DELIVERIES.c.edition_id == bindparam("b_edition"), DELIVERIES.c.subscriber_id == bindparam("b_reader")
    )
)
_MESSAGE = Compiled(select(MESSAGES.c.subscriber_id).where(MESSAGES.c.id == bindparam("b_id")))
_BY_ADDRESS = Compiled(select(SUBSCRIBERS.c.id).where(SUBSCRIBERS.c.email_key == bindparam("b_key")))


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
            row = _DELIVERY_OF.execute(conn, {"b_edition": int(parts[1]), "b_reader": int(parts[2])}).first()
            if row is None:
                return None
            delivery_id, edition_id, subscriber_id = row
            return Match(MatchedBy.MESSAGE_ID, subscriber_id, edition_id, delivery_id=delivery_id)
        if parts[0] == "c" and len(parts) == 2 and parts[1].isdigit():
            return _row_of(conn, BounceTag(TagKind.MESSAGE, int(parts[1])), MatchedBy.MESSAGE_ID)
        return None


def _row_of(conn: Connection, tag: BounceTag, how: MatchedBy) -> Match | None:
    if tag.kind is TagKind.DELIVERY:
        row = _DELIVERY.execute(conn, {"b_id": tag.row_id}).first()
        if row is None:
            return None
        edition_id, subscriber_id = row
        return Match(how, subscriber_id, edition_id, delivery_id=tag.row_id)
    subscriber_id = _MESSAGE.execute(conn, {"b_id": tag.row_id}).scalar()
    if subscriber_id is None:
        return None
    return Match(how, subscriber_id, message_id=tag.row_id)


def _by_address(conn: Connection, address: str) -> Match | None:
    subscriber_id = _BY_ADDRESS.execute(conn, {"b_key": address.lower()}).scalar()
    return None if subscriber_id is None else Match(MatchedBy.ADDRESS, subscriber_id)
