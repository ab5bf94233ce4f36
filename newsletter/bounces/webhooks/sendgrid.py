"""SendGrid's signed event webhook: ECDSA (P-256, SHA-256) over the timestamp header and the raw
body, then a JSON array of events."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

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
    message_id,
    tag_values,
    text,
)
from newsletter.bounces.webhooks.window import check_fresh, from_unix

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Fields SendGrid sets itself: any other is a custom argument, which may carry a bounce tag.
STANDARD_FIELDS = frozenset(
    {
        "email", "timestamp", "smtp-id", "event", "category", "sg_event_id", "sg_message_id",
        "reason", "status", "type", "response", "attempt", "useragent", "ip", "url", "url_offset",
        "tls", "cert_err", "asm_group_id", "marketing_campaign_id", "marketing_campaign_name",
        "marketing_campaign_version", "marketing_campaign_split_id", "pool", "sg_machine_open",
        "bounce_classification", "sg_content_type", "sg_template_id", "sg_template_name", "send_at",
    }
)  # fmt: skip


def check_signature(
    key: ec.EllipticCurvePublicKey,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    now: datetime,
    max_age_seconds: int,
) -> None:
    if not signature or not timestamp:
        raise Forbidden(f"the request is not signed ({SIGNATURE_HEADER})")
    moment = from_unix(timestamp)
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise Forbidden("the signature does not verify") from None
    check_fresh(moment, now, max_age_seconds)


def events(payload: object) -> list[Incoming]:
    if not isinstance(payload, list):
        raise Malformed("body: SendGrid posts a JSON array of events")
    found: list[Incoming] = []
    for n, event in enumerate(payload):
        if not isinstance(event, Mapping):
            raise Malformed(f"body[{n}]: not an event object")
        incoming = _incoming(event)
        if incoming is not None:
            found.append(incoming)
    return found


def _incoming(event: Mapping[str, Any]) -> Incoming | None:
    kind = _kind(event)
    if kind is None:
        return None
    words = diagnostic(event.get("reason"), event.get("response"))
    report = BounceReport(
        kind,
        recipient=address(event.get("email")),
        status=first_status(text(event.get("status")) or "") or first_status(words or ""),
        diagnostic=words,
        original_message_id=message_id(event.get("smtp-id")),
        feedback_type="abuse" if kind is BounceKind.COMPLAINT else None,
    )
    key = event_key("sendgrid", text(event.get("sg_event_id")) or event_hash(event))
    tags = tag_values(value for name, value in event.items() if name not in STANDARD_FIELDS)
    return Incoming(BounceSource.SENDGRID, cleaned(report), key, trusted_recipient=True, tags=tags)


def _kind(event: Mapping[str, Any]) -> BounceKind | None:
    name = text(event.get("event"))
    if name == "bounce":
        return BounceKind.SOFT if text(event.get("type")) == "blocked" else BounceKind.HARD
    if name == "dropped":
        reason = (text(event.get("reason")) or "").lower()
        return BounceKind.HARD if "bounce" in reason or "invalid" in reason else None
    if name == "spamreport":
        return BounceKind.COMPLAINT
    if name == "deferred":
        return BounceKind.DELAYED
    return None  # processed, delivered, open, click, unsubscribe…
