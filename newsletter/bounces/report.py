"""What a message that arrived at the bounce address says: its kind and what it names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BounceKind(StrEnum):
    HARD = "hard"  # permanent: the address will not accept mail
    SOFT = "soft"  # returned for a temporary reason, or given up after the retry period
    DELAYED = "delayed"  # a warning only: the relay is still retrying
    AUTOREPLY = "autoreply"  # vacation and other automatic replies: to be ignored
    COMPLAINT = "complaint"  # the reader reported the message (ARF, feedback loops)
    UNKNOWN = "unknown"  # not a bounce, or nothing in it can be read


@dataclass(frozen=True)
class BounceReport:
    kind: BounceKind
    recipient: str | None = None  # the failed or complaining address, domain lower-cased
    status: str | None = None  # enhanced status code (RFC 3463), "5.1.1"
    diagnostic: str | None = None  # the remote server's words, one line; addresses left in
    original_message_id: str | None = None
    original_sender: str | None = None  # the original's envelope sender, where VERP puts its token
    delivery_header: str | None = None  # the original's X-Newsletter-Delivery value
    feedback_type: str | None = None  # ARF Feedback-Type: abuse, opt-out, auth-failure, ...
