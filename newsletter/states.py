"""The states an edition, a delivery (or outbox message) and a subscriber can be in.

Str-valued, so the database, the API's JSON and the CLI keep the spellings they always had; use
the members everywhere, SQL included.
"""

from __future__ import annotations

from enum import StrEnum


class EditionStatus(StrEnum):
    BUILDING = "building"  # intent recorded; variants being rendered, deliveries enqueued
    SENDING = "sending"  # built; workers deliver it
    PAUSED = "paused"  # stopped with a reason; resume continues (or rebuilds, if never built)
    CANCELLED = "cancelled"
    DONE = "done"


class DeliveryStatus(StrEnum):
    """A ledger row: a digest delivery or an outbox message (a confirmation email)."""

    QUEUED = "queued"
    LEASED = "sending"  # claimed by a worker under a lease (the stored spelling predates the name)
    RETRY = "retry"  # a temporary failure; due again at next_attempt_at
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # never tried: the reader left, the edition was cancelled, nothing new


# Due for a worker; claimed but not finished; never to change again.
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.RETRY)
UNFINISHED = (DeliveryStatus.QUEUED, DeliveryStatus.RETRY, DeliveryStatus.LEASED)
FINAL = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)
# The rows whose failure was a bounce, listed beside the statuses (`editions show --failures`).
BOUNCED_DELIVERIES = "bounced"
LISTED_DELIVERIES = (*(status.value for status in DeliveryStatus), BOUNCED_DELIVERIES)


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # signed up, not confirmed
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    ERASED = "erased"  # personal data removed; the row keeps the ledger's history


# Statuses an import or an admin may not turn back into a mailed subscriber: the reader said no
# (or the address bounced); only the reader's own signup starts over.
REFUSING = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED)


class SuppressionReason(StrEnum):
    """Why an address is on the suppression list (subscriptions.suppressions)."""

    ERASED = "erased"  # kept only as a hash; the owner's own double opt-in lifts it
    COMPLAINT = "complaint"  # the reader reported a message as spam
    MANUAL = "manual"  # an operator's entry


# Reasons a signup cannot lift: the reader's own confirmation is not enough, only an operator.
BLOCKING_SUPPRESSIONS = (SuppressionReason.COMPLAINT, SuppressionReason.MANUAL)
