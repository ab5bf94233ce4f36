"""Complaints: RFC 5965 feedback reports, Hotmail-style (JMRP) reports, Apple Mail unsubscribes."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from newsletter.bounces.dsn import angle_address, bare_address, field_blocks
from newsletter.bounces.reading import Part, field_text, header, param

FEEDBACK_TYPE = "message/feedback-report"
RECIPIENT_FIELDS = ("original-rcpt-to", "removal-recipient")
# Hotmail's JMRP reports carry the complaining reader in the reported message's headers.
JMRP_RECIPIENT = "X-HmXmrOriginalRecipient"


@dataclass(frozen=True)
class Complaint:
    feedback_type: str | None
    recipient: str | None  # None: take the reported message's To
    sender: str | None  # Original-Mail-From


def complaint(message: Message, parts: list[Part], original: Message | None) -> Complaint | None:
    return _feedback_report(message, parts) or _jmrp(original) or _apple_unsubscribe(message)


def _feedback_report(message: Message, parts: list[Part]) -> Complaint | None:
    is_report = param(message, "report-type") == "feedback-report"
    part = next((p.message for p in parts if p.type == FEEDBACK_TYPE), None)
    if part is None:
        return Complaint(None, None, None) if is_report else None
    fields: dict[str, str] = {}
    for block in field_blocks(field_text(part)):
        for name, value in block.items():
            fields.setdefault(name, value)
    recipient = next((bare_address(fields[f]) for f in RECIPIENT_FIELDS if f in fields), None)
    sender = fields.get("original-mail-from")
    feedback_type = fields.get("feedback-type", "").strip().lower() or None
    return Complaint(feedback_type, recipient, bare_address(sender) if sender else None)


def _jmrp(original: Message | None) -> Complaint | None:
    value = header(original, JMRP_RECIPIENT) if original is not None else None
    if value is None:
        return None
    return Complaint("abuse", bare_address(value), None)


def _apple_unsubscribe(message: Message) -> Complaint | None:
    if (header(message, "X-Apple-Unsubscribe") or "").lower() != "true":
        return None
    sender = header(message, "From")
    return Complaint("opt-out", bare_address(angle_address(sender)) if sender else None, None)
