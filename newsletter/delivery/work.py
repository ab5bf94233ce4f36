"""What a worker holds: claimed work items, and the results it records for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from newsletter.states import DeliveryStatus


class Action(StrEnum):
    """What becomes of a claimed row: a new status, or RELEASED (back to the queue untried)."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    RELEASED = "released"

    @property
    def status(self) -> DeliveryStatus:
        """The row's status once the action is recorded."""
        return _STATUS[self]


# Looked up for every recorded outcome: a dict, not DeliveryStatus(value) each time.
_STATUS = {
    action: DeliveryStatus.QUEUED if action is Action.RELEASED else DeliveryStatus(action.value)
    for action in Action
}


class WorkKind(StrEnum):
    DIGEST = "digest"  # a row of `deliveries`: one reader's copy of an edition
    CONFIRMATION = "confirmation"  # a row of `messages`: a double opt-in email


@dataclass(slots=True)
class WorkItem:
    kind: WorkKind
    id: int
    subscriber_id: int
    attempts: int
    edition_id: int | None = None
    variant_id: int | None = None
    newsletter_id: str | None = None
    email: str | None = None
    # The subscriber's link nonce, signed into their links (personal.tokens).
    nonce: str = ""
    # Decided at claim: the subscriber is active (pending, for a confirmation) and still
    # subscribed to the newsletter.
    eligible: bool = False

    @property
    def key(self) -> tuple[WorkKind, int]:
        return self.kind, self.id


@dataclass(slots=True)
class Result:
    item: WorkItem
    action: Action
    code: int | None = None
    reply: str | None = None
    message_id: str | None = None
    next_attempt_at: datetime | None = None
    hard_bounce: bool = False
    relay: str | None = None  # the relay the attempt went through
