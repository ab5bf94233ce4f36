"""The returned original inside a report: the identifiers that match it to a delivery."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message

from newsletter.bounces.reading import MAX_TEXT, Part, header
from newsletter.rendering.headers import DELIVERY_FIELD

ORIGINAL_TYPES = frozenset({"message/rfc822", "message/global"})
HEADER_TYPES = frozenset({"text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header"})

_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*\r?\n?[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_RETURN_PATH = re.compile(r"^Return-Path:[ \t]*<([^<>\s]*)>", re.IGNORECASE | re.MULTILINE)
_DELIVERY = re.compile(rf"^{DELIVERY_FIELD}:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Original:
    message_id: str | None = None
    sender: str | None = None  # Return-Path, the envelope sender
    delivery_header: str | None = None
    to: str | None = None  # the reported message's To: a complaint's reader when no field names one


def returned_original(parts: list[Part]) -> Message | None:
    """The returned message (or just its headers) carried by a report, if any."""
    for part in parts[1:]:
        if part.type in ORIGINAL_TYPES:
            inner = _inner(part.message)
            if inner is not None:
                return inner
        elif part.type in HEADER_TYPES:
            return _headers_part(part.message)
    return None


def identifiers(original: Message | None, text: str) -> Original:
    """The original's identifiers from its headers, else from lines quoted in the report's text."""
    found = Original()
    if original is not None:
        sender = header(original, "Return-Path")
        found = Original(
            message_id=header(original, "Message-ID"),
            sender=sender.strip("<> ") or None if sender else None,
            delivery_header=header(original, DELIVERY_FIELD),
            to=header(original, "To"),
        )
    return Original(
        message_id=found.message_id or _search(_MESSAGE_ID, text),
        sender=found.sender or _search(_RETURN_PATH, text),
        delivery_header=found.delivery_header or _search(_DELIVERY, text),
        to=found.to,
    )


def _inner(part: Message) -> Message | None:
    try:
        payload = part.get_payload()
    except Exception:
        return None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):  # an encoded message/rfc822 the parser left as text
        return _parse_headers(payload.encode("utf-8", errors="replace"))
    return None


def _headers_part(part: Message) -> Message | None:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return None
    if not isinstance(payload, bytes):
        return None
    return _parse_headers(payload[:MAX_TEXT])


def _parse_headers(data: bytes) -> Message | None:
    try:
        return email.message_from_bytes(data.lstrip(), policy=email.policy.default)
    except Exception:
        return None


def _search(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match and match.group(1) else None
