"""Reading a provider's JSON: typed values out of untrusted mappings, identifiers tidied."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from newsletter.bounces.dsn import bare_address
from newsletter.bounces.reading import one_line
from newsletter.bounces.report import BounceReport
from newsletter.bounces.webhooks.errors import Malformed

MAX_TAGS = 10
MAX_TAG_LENGTH = 200
MAX_KEY = 200  # the width of bounce_events.event_key


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: object) -> str | None:
    """A JSON string or number as text; None for anything else, or an empty string."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return storable(str(value)) or None


def storable(value: str) -> str:
    """Text a database takes: JSON may escape a NUL or a lone surrogate, PostgreSQL takes neither."""
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def cleaned(report: BounceReport) -> BounceReport:
    """The report with every text field storable (ses.report_of reads its JSON as it is)."""
    return dataclasses.replace(
        report,
        recipient=_storable(report.recipient),
        status=_storable(report.status),
        diagnostic=_storable(report.diagnostic),
        original_message_id=_storable(report.original_message_id),
        original_sender=_storable(report.original_sender),
        delivery_header=_storable(report.delivery_header),
        feedback_type=_storable(report.feedback_type),
    )


def _storable(value: str | None) -> str | None:
    return None if value is None else storable(value)


def event_key(provider: str, ident: str) -> str:
    """`provider:ident`, the id hashed when the whole would not fit the column whole."""
    key = f"{provider}:{storable(ident)}"
    if len(key) <= MAX_KEY:
        return key
    return f"{provider}:sha256:" + hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()


def address(value: object) -> str | None:
    found = text(value)
    return bare_address(found) if found else None


def diagnostic(*values: object) -> str | None:
    """The first non-empty of the provider's words, on one line."""
    for value in values:
        found = text(value)
        if found and found.strip():
            return one_line(found)
    return None


def message_id(value: object) -> str | None:
    """A Message-ID in angle brackets, as ours are made (Mailgun and SendGrid drop them)."""
    found = (text(value) or "").strip()
    if not found or " " in found:
        return None
    return found if found.startswith("<") else f"<{found}>"


def tag_values(values: Iterable[object]) -> tuple[str, ...]:
    """Short string values a provider echoed back (custom arguments, metadata, tags): one of
    them may be a delivery's bounce tag. A few only: each costs the matcher a MAC."""
    found: list[str] = []
    for value in values:
        candidate = text(value)
        if candidate and len(candidate) <= MAX_TAG_LENGTH and candidate not in found:
            found.append(candidate)
        if len(found) == MAX_TAGS:
            break
    return tuple(found)


def event_hash(event: Mapping[str, Any]) -> str:
    """The id of an event its provider gave none: the same event twice is one."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()


def json_object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Malformed(f"body: {what} must be a JSON object")
    return value
