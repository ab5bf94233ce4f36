"""What each way in (the receiver, the mailbox scanner, a provider's webhook) hands the recorder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from newsletter.bounces.classify import classify
from newsletter.bounces.report import BounceReport


class BounceSource(StrEnum):
    RECEIVER = "receiver"
    MAILBOX = "mailbox"
    SES = "ses"
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"


@dataclass(frozen=True)
class Incoming:
    source: BounceSource
    report: BounceReport
    # Once per event: a provider's event id ("ses:<id>"), else a hash of the message itself.
    event_key: str
    # Where the message was delivered (the receiver's RCPT TO, a mailbox's Delivered-To): with
    # VERP, the address carries the tag of the delivery it is about.
    envelope_recipients: tuple[str, ...] = ()
    # A provider authenticated the report, so its recipient alone may name a reader. A message
    # anyone could have mailed to us never may: it must carry a tag or one of our Message-IDs.
    trusted_recipient: bool = False
    received_at: datetime | None = None
    # Extra tags a provider carried for us (custom arguments, metadata).
    tags: tuple[str, ...] = field(default=())


def message_key(raw: bytes) -> str:
    """The idempotency key of a returned message: the same bytes twice are one event."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def from_message(
    source: BounceSource,
    raw: bytes,
    *,
    envelope_recipients: tuple[str, ...] = (),
    received_at: datetime | None = None,
) -> Incoming:
    """A returned message (a DSN, an ARF report, an auto-reply) as it arrived by mail."""
    return Incoming(
        source,
        classify(raw),
        message_key(raw),
        envelope_recipients=envelope_recipients,
        received_at=received_at,
    )
