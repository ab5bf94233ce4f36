"""RFC 3464 delivery status notifications: the per-recipient fields and what they mean."""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.bounces.codes import first_status, kind_of_failure
from newsletter.bounces.reading import Part, field_text, one_line
from newsletter.bounces.report import BounceKind

STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
MAX_BLOCKS = 200

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_ADDRESS_TYPE = re.compile(r"^\s*[A-Za-z0-9-]+\s*;\s*")


@dataclass(frozen=True)
class RecipientStatus:
    recipient: str | None
    action: str  # lower-cased; "" when the block has none
    status: str | None
    diagnostic: str | None


@dataclass(frozen=True)
class Notification:
    recipients: list[RecipientStatus]
    envelope_sender: str | None  # Postfix's X-Postfix-Sender and the like


def status_text(parts: list[Part]) -> str | None:
    """The text of the message's delivery-status part, if it has one."""
    for part in parts:
        if part.type in STATUS_TYPES:
            return field_text(part.message)
    return None


def parse_notification(text: str) -> Notification | None:
    blocks = field_blocks(text)
    recipients = [_recipient(block) for block in blocks if _is_recipient(block)]
    if not recipients:
        return None
    sender = next((block[f] for block in blocks for f in _SENDER_FIELDS if f in block), None)
    return Notification(recipients, bare_address(sender) if sender else None)


_SENDER_FIELDS = ("x-postfix-sender", "x-original-envelope-from", "x-sender")


def chosen(recipients: list[RecipientStatus]) -> RecipientStatus:
    """The first failed recipient; else the first delayed one; else the first."""
    for wanted in (("failed", "expired"), ("delayed",)):
        for recipient in recipients:
            if recipient.action in wanted:
                return recipient
    return recipients[0]


def kind_of(recipient: RecipientStatus) -> BounceKind:
    action, status = recipient.action, recipient.status
    if action == "expired":
        return BounceKind.SOFT
    if action == "delayed":
        return BounceKind.DELAYED
    if action in ("delivered", "relayed", "expanded", "deliverable") or (status or "").startswith("2"):
        return BounceKind.UNKNOWN
    # "failed" is final by definition; without a code or a cause, take it at its word.
    return kind_of_failure(status, recipient.diagnostic or "", default=BounceKind.HARD)


def field_blocks(text: str) -> list[dict[str, str]]:
    """Header-like field blocks separated by blank lines, names lower-cased, folds joined."""
    blocks: list[dict[str, str]] = []
    block: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip():
            if block:
                blocks.append(block)
                if len(blocks) >= MAX_BLOCKS:
                    return blocks
            block, name = {}, ""
        elif line[0] in " \t" and name:
            block[name] = f"{block[name]} {line.strip()}"
        elif match := _FIELD.match(line):
            name = match.group(1).lower()
            block.setdefault(name, match.group(2).strip())
    if block:
        blocks.append(block)
    return blocks


def bare_address(value: str) -> str | None:
    """`rfc822; <User@Example.COM>` as `User@example.com`."""
    address = _ADDRESS_TYPE.sub("", value, count=1).strip().strip("<>").strip()
    if "@" not in address or " " in address:
        return None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def angle_address(value: str) -> str:
    """The address inside `Name <address>`, or the value itself."""
    start, end = value.rfind("<"), value.rfind(">")
    return value[start + 1 : end] if 0 <= start < end else value


def _is_recipient(block: dict[str, str]) -> bool:
    return any(field in block for field in RECIPIENT_FIELDS) and ("action" in block or "status" in block)


def _recipient(block: dict[str, str]) -> RecipientStatus:
    address = next((bare_address(block[f]) for f in RECIPIENT_FIELDS if f in block), None)
    diagnostic = block.get("diagnostic-code")
    if diagnostic:
        diagnostic = one_line(_ADDRESS_TYPE.sub("", diagnostic, count=1))
    action = block.get("action", "").split()[0].lower() if block.get("action", "").strip() else ""
    status = first_status(block.get("status", "")) or first_status(diagnostic or "")
    return RecipientStatus(address, action, status, diagnostic or None)
