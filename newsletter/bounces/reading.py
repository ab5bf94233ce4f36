"""Reading untrusted message bytes without raising: parsing, bounded walks, decoded text."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message
from typing import NamedTuple

MAX_BYTES = 1024 * 1024  # a report's evidence sits at its start; the rest is the returned original
MAX_PARTS = 64
MAX_DEPTH = 8
MAX_TEXT = 256 * 1024  # decoded text of one part

_SPACE = re.compile(r"\s+")


class Unreadable(ValueError):
    """The bytes are not a message this package can read."""


def parse(raw: bytes) -> Message:
    """The message, read with the lax compat32 policy: it reads broken MIME that the modern
    policy trips on, and at about five times its speed (header objects are built lazily)."""
    if not raw.strip():
        raise Unreadable("empty message")
    try:
        return email.message_from_bytes(raw[:MAX_BYTES], policy=email.policy.compat32)
    except Exception as error:  # the parser's own bugs on hostile input
        raise Unreadable(f"unreadable MIME ({type(error).__name__})") from error


def header(message: Message, name: str) -> str | None:
    """One header's value, unfolded and trimmed; None when absent or unparseable."""
    try:
        value = message.get(name)
        if value is None:
            return None
        text = _SPACE.sub(" ", str(value)).strip()
    except Exception:
        return None
    return text or None


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    return value.lower() if isinstance(value, str) else None


class Part(NamedTuple):
    message: Message
    type: str  # its content type, read once: parsing it is most of the cost of a walk


def walk(message: Message) -> list[Part]:
    """Every part, depth-first, at most MAX_PARTS of them and MAX_DEPTH deep."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    parts: list[Part] = []
    while stack and len(parts) < MAX_PARTS:
        part, depth = stack.pop()
        parts.append(Part(part, content_type(part)))
        if depth >= MAX_DEPTH:
            continue
        children = _children(part)
        stack.extend((child, depth + 1) for child in reversed(children))
    return parts


def _children(part: Message) -> list[Message]:
    try:
        if not part.is_multipart():
            return []
        payload = part.get_payload()
    except Exception:
        return []
    if not isinstance(payload, list):
        return []
    return [child for child in payload[:MAX_PARTS] if isinstance(child, Message)]


def text_of(part: Message) -> str:
    """A non-multipart part's payload decoded to text, whatever its charset claims."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        return _undecoded(part)
    return decode(payload[:MAX_TEXT], _charset(part))


def _undecoded(part: Message) -> str:
    """A multipart whose boundary never appears is left as one string: read it as text."""
    try:
        payload = part.get_payload()
    except Exception:
        return ""
    return payload[:MAX_TEXT] if isinstance(payload, str) else ""


def decode(data: bytes, charset: str = "utf-8") -> str:
    try:
        return data.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


def _charset(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        return "utf-8"
    return charset or "utf-8"


def one_line(text: str, limit: int = 1000) -> str:
    return _SPACE.sub(" ", text).strip()[:limit]


def field_text(part: Message) -> str:
    """A message/delivery-status or message/feedback-report part's fields as text.

    The parser splits such parts into header blocks (or leaves them as text); either way the
    caller gets the blocks back separated by blank lines.
    """
    try:
        payload = part.get_payload()
    except Exception:
        return ""
    if isinstance(payload, str):
        return payload[:MAX_TEXT]
    if isinstance(payload, list):
        return "\n\n".join(_block_text(block) for block in payload if isinstance(block, Message))
    return ""


def _block_text(block: Message) -> str:
    lines = []
    try:  # the raw values: addresses stay as the report wrote them, encoded words and all
        for name, value in block.raw_items():
            lines.append(f"{name}: {value}")
    except Exception:
        pass
    return "\n".join(lines)
