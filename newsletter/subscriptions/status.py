"""A subscriber's status, as stored in subscribers.status."""

from __future__ import annotations

PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
ERASED = "erased"

ALL = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED, ERASED)
# Statuses an import or an admin may not turn back into a mailed subscriber: the reader
# said no (or the address bounced); only the reader's own signup starts over.
REFUSING = (UNSUBSCRIBED, BOUNCED)
