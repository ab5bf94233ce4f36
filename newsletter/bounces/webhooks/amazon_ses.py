"""Amazon SES bounce and complaint notifications, as SNS delivers them: one `Incoming` for each
recipient, read by the same `bounces.ses.report_of` that reads them from email."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from newsletter.bounces.incoming import BounceSource, Incoming
from newsletter.bounces.report import BounceReport
from newsletter.bounces.ses import report_of
from newsletter.bounces.webhooks.fields import cleaned, event_key, items, mapping, message_id, tag_values

# The notification's part and the list of recipients it is about, by notification type.
_RECIPIENTS = {"Bounce": ("bounce", "bouncedRecipients"), "Complaint": ("complaint", "complainedRecipients")}


def events(message: str, sns_message_id: str) -> list[Incoming]:
    """Bounces and complaints; any other notification (Delivery, Send, Open…) is none."""
    notification = _notification(message)
    kind = str(notification.get("notificationType") or notification.get("eventType") or "")
    if kind not in _RECIPIENTS:
        return []
    part, list_name = _RECIPIENTS[kind]
    body = mapping(notification.get(part))
    recipients = items(body.get(list_name)) or [{}]
    tags = _tags(mapping(notification.get("mail")))
    found: list[Incoming] = []
    for recipient in recipients:
        single = {**notification, part: {**body, list_name: [recipient]}}
        report = _with_common_headers(report_of(single), mapping(notification.get("mail")))
        if len(recipients) > 1:
            report = _without_message_ids(report)
        key = event_key("ses", f"{sns_message_id}/{report.recipient or ''}")
        found.append(Incoming(BounceSource.SES, cleaned(report), key, trusted_recipient=True, tags=tags))
    return found


def _notification(message: str) -> Mapping[str, Any]:
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return {}
    return mapping(data)


def _with_common_headers(report: BounceReport, mail: Mapping[str, Any]) -> BounceReport:
    """mail.headers is there only when the identity includes original headers; the
    Message-ID is in mail.commonHeaders always."""
    found = report.original_message_id or mapping(mail.get("commonHeaders")).get("messageId")
    return dataclasses.replace(report, original_message_id=message_id(found))


def _without_message_ids(report: BounceReport) -> BounceReport:
    """Ours go to one reader each: a message with several recipients names none of them by its
    Message-ID, envelope sender or delivery header, only by each recipient's address."""
    return dataclasses.replace(report, original_message_id=None, original_sender=None, delivery_header=None)


def _tags(mail: Mapping[str, Any]) -> tuple[str, ...]:
    """SES message tags ({"name": ["value"]}), without SES's own ("ses:…")."""
    values: list[object] = []
    for name, value in mapping(mail.get("tags")).items():
        if not str(name).startswith("ses:"):
            values.extend(items(value))
    return tag_values(values)
