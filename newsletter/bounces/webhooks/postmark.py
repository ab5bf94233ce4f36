"""Postmark's bounce and spam complaint webhooks, sent with the HTTP Basic credentials set on
the webhook's URL (https://user:password@host/webhooks/postmark)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from newsletter.bounces.codes import first_status
from newsletter.bounces.incoming import BounceSource, Incoming
from newsletter.bounces.report import BounceKind, BounceReport
from newsletter.bounces.webhooks.errors import Unauthenticated
from newsletter.bounces.webhooks.fields import (
    address,
    cleaned,
    diagnostic,
    event_hash,
    event_key,
    json_object,
    mapping,
    tag_values,
    text,
)
from newsletter.config.bounces import WebhooksConfig

# Postmark's bounce types (its "Type" field) that say something about the address.
HARD = frozenset({"HardBounce", "BadEmailAddress"})
SOFT = frozenset({"SoftBounce", "Transient", "DnsError", "Blocked", "SpamNotification"})
COMPLAINT = "SpamComplaint"


def check_credentials(config: WebhooksConfig, authorization: str | None) -> None:
    """Both parts compared in constant time, and both always compared."""
    username, password = _basic(authorization)
    same_user = hmac.compare_digest(username, config.postmark_username.encode("utf-8"))
    expected = config.postmark_password.get_secret_value().encode("utf-8")
    same_password = hmac.compare_digest(password, expected)
    if not (same_user and same_password):
        raise Unauthenticated("wrong or missing credentials")


def events(payload: object) -> list[Incoming]:
    record = json_object(payload, "a Postmark webhook record")
    kind = _kind(record)
    if kind is None:
        return []
    details = text(record.get("Details")) or ""
    report = BounceReport(
        kind,
        recipient=address(record.get("Email")),
        status=first_status(details),
        diagnostic=diagnostic(details, record.get("Description")),
        feedback_type="abuse" if kind is BounceKind.COMPLAINT else None,
    )
    ident = text(record.get("ID"))
    record_type = text(record.get("RecordType"))
    key = event_key("postmark", f"{ident}/{record_type}" if ident else event_hash(record))
    tags = tag_values([record.get("Tag"), *mapping(record.get("Metadata")).values()])
    return [Incoming(BounceSource.POSTMARK, cleaned(report), key, trusted_recipient=True, tags=tags)]


def _kind(record: Mapping[str, Any]) -> BounceKind | None:
    record_type, bounce_type = text(record.get("RecordType")), text(record.get("Type"))
    if COMPLAINT in (record_type, bounce_type):
        return BounceKind.COMPLAINT
    if record_type != "Bounce":
        return None  # Delivery, Open, Click, SubscriptionChange…
    if bounce_type in HARD:
        return BounceKind.HARD
    if bounce_type in SOFT:
        return BounceKind.SOFT
    return None  # auto-responders, challenge verifications, address changes…


def _basic(authorization: str | None) -> tuple[bytes, bytes]:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("wrong or missing credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthenticated("wrong or missing credentials") from None
    username, colon, password = decoded.partition(b":")
    if not colon:
        raise Unauthenticated("wrong or missing credentials")
    return username, password
