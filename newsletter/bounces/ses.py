"""Amazon SES notifications (Bounce, Complaint, Delivery) as JSON, from email or a webhook."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from newsletter.bounces.codes import first_status
from newsletter.bounces.dsn import bare_address
from newsletter.bounces.reading import one_line
from newsletter.bounces.report import BounceKind, BounceReport

_START = re.compile(r'\{\s*"(notificationType|eventType)"')
# Mail relays break JSON lines longer than 998 characters with "!", a line end and a space.
_LINE_BREAK = re.compile(r"!\r?\n ")


def notification_in(text: str) -> Mapping[str, Any] | None:
    """The SES notification JSON quoted in an email's text, if there is one."""
    match = _START.search(text)
    if match is None:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(_LINE_BREAK.sub("", text[match.start() :]))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def report_of(notification: Mapping[str, Any]) -> BounceReport:
    kind = str(notification.get("notificationType") or notification.get("eventType") or "")
    mail = _mapping(notification.get("mail"))
    headers = {
        str(h.get("name", "")).lower(): str(h.get("value", ""))
        for h in _list(mail.get("headers"))
        if isinstance(h, Mapping)
    }
    common = {
        "original_message_id": headers.get("message-id"),
        "original_sender": _address(mail.get("source")),
        "delivery_header": headers.get("x-newsletter-delivery"),
    }
    if kind == "Bounce":
        return _bounce(_mapping(notification.get("bounce")), common)
    if kind == "Complaint":
        body = _mapping(notification.get("complaint"))
        recipients = _list(body.get("complainedRecipients"))
        feedback = body.get("complaintFeedbackType")
        return BounceReport(
            BounceKind.COMPLAINT,
            recipient=_address(_mapping(recipients[0]).get("emailAddress")) if recipients else None,
            feedback_type=str(feedback) if feedback else None,
            **common,
        )
    return BounceReport(BounceKind.UNKNOWN, diagnostic=f"an SES {kind or 'unknown'} notification", **common)


def _bounce(bounce: Mapping[str, Any], common: dict[str, str | None]) -> BounceReport:
    recipients = _list(bounce.get("bouncedRecipients"))
    first = _mapping(recipients[0]) if recipients else {}
    diagnostic = str(first.get("diagnosticCode") or "")
    status = first_status(str(first.get("status") or "")) or first_status(diagnostic)
    # SES's own verdict: Transient bounces are the ones it retried and gave up on, or will retry.
    kind = BounceKind.HARD if bounce.get("bounceType") == "Permanent" else BounceKind.SOFT
    return BounceReport(
        kind,
        recipient=_address(first.get("emailAddress")),
        status=status,
        diagnostic=one_line(diagnostic.removeprefix("smtp;")) or None,
        **common,
    )


def _address(value: object) -> str | None:
    return bare_address(value) if isinstance(value, str) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
