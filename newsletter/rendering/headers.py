"""The header block of a digest or a confirmation, with slots for the per-recipient values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr

from newsletter.config import NewsletterConfig, Settings
from newsletter.rendering.mime import CRLF, header, phrase

# A slot is a str in a list of byte segments: MessageTemplate.build fills it per recipient.
Segment = bytes | str
TO, MESSAGE_ID, UNSUBSCRIBE = "header:to", "header:message_id", "header:unsubscribe_url"
DELIVERY = "header:delivery"
# Names the ledger row a message was sent for (personal.verp), so a bounce that quotes the
# original's headers can be matched when the envelope sender's tag is lost.
DELIVERY_FIELD = "X-Newsletter-Delivery"
DELIVERY_HEADER = f"{DELIVERY_FIELD}: ".encode("ascii")


@dataclass(frozen=True)
class HeaderBlock:
    segments: list[Segment]
    utf8: bool  # an address in it needs SMTPUTF8


def needs_utf8(settings: Settings, *addresses: str) -> bool:
    return not all(address.isascii() for address in (settings.smtp.from_address, *addresses))


def _addressed(settings: Settings, subject: str, date: datetime, reply_to: str, utf8: bool) -> list[Segment]:
    if date.tzinfo is None:
        raise ValueError("date: a timezone-aware datetime is needed for the Date header")
    smtp = settings.smtp
    segments: list[Segment] = [
        header("From", formataddr((smtp.from_name, smtp.from_address)), utf8=utf8),
        b"To: ",
        TO,
        CRLF,
        header("Subject", subject),
        header("Date", format_datetime(date)),
        b"Message-ID: ",
        MESSAGE_ID,
        CRLF,
        DELIVERY_HEADER,
        DELIVERY,
        CRLF,
    ]
    if reply_to:
        segments.append(header("Reply-To", reply_to, utf8=utf8))
    return segments


def digest_headers(
    settings: Settings, newsletter: NewsletterConfig, subject: str, date: datetime
) -> HeaderBlock:
    reply_to = newsletter.reply_to or settings.smtp.reply_to
    mailto = settings.smtp.list_unsubscribe_mailto
    utf8 = needs_utf8(settings, reply_to, mailto)
    segments = _addressed(settings, subject, date, reply_to, utf8)
    list_id = f"{phrase(newsletter.name)} <{newsletter.id}.{settings.smtp.sender_domain}>"
    segments += [header("List-Id", list_id), b"List-Unsubscribe: <", UNSUBSCRIBE, b">"]
    if mailto:
        segments.append(f",\r\n <mailto:{mailto}?subject=unsubscribe>".encode())
    segments += [CRLF, b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"]
    return HeaderBlock(segments, utf8)


def confirmation_headers(settings: Settings, subject: str, date: datetime) -> HeaderBlock:
    reply_to = settings.smtp.reply_to
    utf8 = needs_utf8(settings, reply_to)
    return HeaderBlock(_addressed(settings, subject, date, reply_to, utf8), utf8)
