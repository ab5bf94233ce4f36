"""The header block of a digest or a confirmation, with slots for the per-recipient values."""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr

from newsletter.config import NewsletterConfig, Settings
from newsletter.rendering.mime import CRLF, header, phrase

# A slot is a str in a list of byte segments: MessageTemplate.build fills it per recipient.
Segment = bytes | str
TO, MESSAGE_ID, UNSUBSCRIBE = "header:to", "header:message_id", "header:unsubscribe_url"

_ID_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True)
class HeaderBlock:
    segments: list[Segment]
    signed: list[bytes]  # header names a DKIM signature covers
    utf8: bool  # an address in it needs SMTPUTF8


def sender_domain(settings: Settings) -> str:
    domain = settings.smtp.from_address.rsplit("@", 1)[-1]
    return domain.encode("idna").decode("ascii").lower()


def make_message_id(settings: Settings, kind: str, *parts: int | str) -> str:
    """Deterministic: the same kind and parts give the same id; a keyed hash makes ids
    unguessable. make_message_id(s, "e", 12, 3456) -> "<e.12.3456.k3j4m2qa@londondaily.example>"."""
    label = ".".join([kind, *(str(part) for part in parts)])
    if not _ID_LABEL.fullmatch(label):
        raise ValueError(f"message id parts must be letters, digits, '-' or '_': {label!r}")
    key = settings.security.secret_key.get_secret_value().encode("utf-8")
    digest = hmac.new(key, b"message-id\0" + label.encode("ascii"), "sha256").digest()
    tag = base64.b32encode(digest[:5]).decode("ascii").lower()
    return f"<{label}.{tag}@{sender_domain(settings)}>"


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
    list_id = f"{phrase(newsletter.name)} <{newsletter.id}.{sender_domain(settings)}>"
    segments += [header("List-Id", list_id), b"List-Unsubscribe: <", UNSUBSCRIBE, b">"]
    if mailto:
        segments.append(f",\r\n <mailto:{mailto}?subject=unsubscribe>".encode())
    segments += [CRLF, b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"]
    signed = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id"]
    signed += [b"list-unsubscribe", b"list-unsubscribe-post"]
    if reply_to:
        signed.append(b"reply-to")
    return HeaderBlock(segments, signed, utf8)


def confirmation_headers(settings: Settings, subject: str, date: datetime) -> HeaderBlock:
    reply_to = settings.smtp.reply_to
    utf8 = needs_utf8(settings, reply_to)
    segments = _addressed(settings, subject, date, reply_to, utf8)
    signed = [b"from", b"to", b"subject", b"date", b"message-id"]
    if reply_to:
        signed.append(b"reply-to")
    return HeaderBlock(segments, signed, utf8)
