"""Mailgun's webhooks: HMAC-SHA256 of timestamp and token with the signing key, in the body's
`signature`; the event in `event-data`."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from newsletter.bounces.codes import first_status
from newsletter.bounces.incoming import BounceSource, Incoming
from newsletter.bounces.report import BounceKind, BounceReport
from newsletter.bounces.webhooks.errors import Forbidden, Malformed
from newsletter.bounces.webhooks.fields import (
    address,
    cleaned,
    diagnostic,
    event_hash,
    event_key,
    items,
    json_object,
    mapping,
    message_id,
    tag_values,
    text,
)
from newsletter.bounces.webhooks.window import check_fresh, from_unix
from newsletter.config.bounces import WebhooksConfig


def check_signature(config: WebhooksConfig, payload: Mapping[str, Any], *, now: datetime) -> str:
    """The request's token, once its signature and time check out (the caller refuses a
    token seen before)."""
    signature = mapping(payload.get("signature"))
    timestamp, token = text(signature.get("timestamp")), text(signature.get("token"))
    given = text(signature.get("signature"))
    if not (timestamp and token and given):
        raise Forbidden("the request is not signed (signature.timestamp, .token, .signature)")
    moment = from_unix(timestamp)
    key = config.mailgun_signing_key.get_secret_value().encode("utf-8")
    expected = hmac.new(key, (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("utf-8")):
        raise Forbidden("the signature does not verify")
    check_fresh(moment, now, config.max_age_seconds)
    return token


def events(payload: Mapping[str, Any]) -> list[Incoming]:
    data = payload.get("event-data")
    if not isinstance(data, Mapping):
        raise Malformed("event-data: missing, or not an object")
    kind = _kind(data)
    if kind is None:
        return []
    status = mapping(data.get("delivery-status"))
    headers = {str(k).lower(): v for k, v in mapping(mapping(data.get("message")).get("headers")).items()}
    words = diagnostic(status.get("message"), status.get("description"), data.get("reason"))
    report = BounceReport(
        kind,
        recipient=address(data.get("recipient")),
        status=first_status(text(status.get("enhanced-code")) or "") or first_status(words or ""),
        diagnostic=words,
        original_message_id=message_id(headers.get("message-id")),
        delivery_header=text(headers.get("x-newsletter-delivery")),
        feedback_type="abuse" if kind is BounceKind.COMPLAINT else None,
    )
    key = event_key("mailgun", text(data.get("id")) or event_hash(data))
    tags = tag_values([*mapping(data.get("user-variables")).values(), *items(data.get("tags"))])
    return [Incoming(BounceSource.MAILGUN, cleaned(report), key, trusted_recipient=True, tags=tags)]


def payload_of(value: object) -> Mapping[str, Any]:
    return json_object(value, "a Mailgun webhook")


def _kind(data: Mapping[str, Any]) -> BounceKind | None:
    name = text(data.get("event"))
    if name == "complained":
        return BounceKind.COMPLAINT
    if name != "failed":
        return None  # delivered, accepted, opened, clicked, unsubscribed…
    severity = text(data.get("severity"))
    if severity == "permanent":
        return BounceKind.HARD
    return BounceKind.SOFT if severity == "temporary" else None
