"""The SMTP relays a worker sends through, and which claimed message goes to which.

Each relay has its own queue of claimed messages, connections (`concurrency`) and rate limit.
A message goes to the least loaded (by weight) of the relays its newsletter may use that are in
rotation. A relay that cannot be reached is taken out of rotation for a while and its queue is
handed to the others; one whose configuration is refused (a wrong password, a rejected
certificate) is out until the configuration is fixed. Messages that no relay in rotation may
carry wait in their queue, spending no attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from newsletter.config import NewsletterConfig, SmtpConfig
from newsletter.delivery.ratelimit import RateLimiter
from newsletter.delivery.work import WorkItem, WorkKind


class RelayState(StrEnum):
    IN_ROTATION = "in rotation"
    AWAY = "away"  # could not be reached; tried again after `away_until`
    MISCONFIGURED = "misconfigured"  # refused our configuration: out until it is fixed


@dataclass
class Relay:
    name: str
    key: str  # where it is configured: "smtp" or "smtp.relays[1]"
    config: SmtpConfig
    weight: float
    limiter: RateLimiter
    queue: asyncio.Queue[WorkItem] = field(default_factory=asyncio.Queue)
    state: RelayState = RelayState.IN_ROTATION
    away_until: float = 0.0
    fault: str | None = None  # why it is out, for the operator

    @property
    def usable(self) -> bool:
        if self.state is RelayState.AWAY and time.monotonic() >= self.away_until:
            self.state = RelayState.IN_ROTATION
        return self.state is RelayState.IN_ROTATION

    @property
    def load(self) -> float:
        return self.queue.qsize() / self.weight


class RelayPool:
    def __init__(
        self, smtp: SmtpConfig, newsletters: Sequence[NewsletterConfig], *, limiters: dict[str, RateLimiter]
    ) -> None:
        self.relays = [
            Relay(r.name, r.key, r.config, r.weight, limiters.get(r.name) or RateLimiter(r.config.rate_limit))
            for r in smtp.relay_settings()
        ]
        everyone = [relay.name for relay in self.relays]
        self._confirmations = list(smtp.confirmation_relays) or everyone
        self._digests = {n.id: list(n.relays) or everyone for n in newsletters}
        self._everyone = everyone
        self.changed = asyncio.Event()  # set when a relay's state changes

    def allowed(self, item: WorkItem) -> list[Relay]:
        if item.kind is WorkKind.CONFIRMATION:
            names = self._confirmations
        else:
            names = self._digests.get(item.newsletter_id or "", self._everyone)
        return [relay for relay in self.relays if relay.name in names]

    def route(self, item: WorkItem, *, avoiding: Relay | None = None) -> Relay | None:
        """Queue `item` on the least loaded usable relay it may use; when none is usable, on the
        first it may use that is only away (it waits there). None when every relay it may use
        refused our configuration: the caller hands it back to the ledger."""
        candidates = [r for r in self.allowed(item) if r.state is not RelayState.MISCONFIGURED]
        if not candidates:
            return None
        usable = [relay for relay in candidates if relay is not avoiding and relay.usable]
        chosen = min(usable, key=lambda relay: relay.load) if usable else candidates[0]
        chosen.queue.put_nowait(item)
        return chosen

    def queued(self) -> int:
        return sum(relay.queue.qsize() for relay in self.relays)

    def take_all(self) -> list[WorkItem]:
        """Every queued message, out of every queue (when the worker stops)."""
        items: list[WorkItem] = []
        for relay in self.relays:
            while not relay.queue.empty():
                items.append(relay.queue.get_nowait())
        return items

    def away(self, relay: Relay, seconds: float, reason: str) -> None:
        relay.state, relay.away_until, relay.fault = RelayState.AWAY, time.monotonic() + seconds, reason
        self._hand_over(relay)

    def misconfigured(self, relay: Relay, reason: str) -> None:
        relay.state, relay.fault = RelayState.MISCONFIGURED, reason
        self._hand_over(relay)

    def back(self, relay: Relay) -> None:
        if relay.state is not RelayState.IN_ROTATION:
            relay.state, relay.fault = RelayState.IN_ROTATION, None
            self._notify()

    @property
    def all_misconfigured(self) -> bool:
        return all(relay.state is RelayState.MISCONFIGURED for relay in self.relays)

    def _hand_over(self, relay: Relay) -> None:
        """Move what is queued on `relay` to relays that can carry it now; what only `relay`
        could carry stays (away) or is kept for `stranded` (misconfigured)."""
        for item in list(_drain(relay.queue)):
            elsewhere = any(other.usable for other in self.allowed(item) if other is not relay)
            if not elsewhere or self.route(item, avoiding=relay) is None:
                relay.queue.put_nowait(item)
        self._notify()

    def stranded(self) -> list[WorkItem]:
        """Messages queued on misconfigured relays: they go back to the ledger (another worker,
        or this one after a fix, sends them)."""
        items: list[WorkItem] = []
        for relay in self.relays:
            if relay.state is RelayState.MISCONFIGURED:
                items += list(_drain(relay.queue))
        return items

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


def _drain(queue: asyncio.Queue[WorkItem]) -> Iterable[WorkItem]:
    while not queue.empty():
        yield queue.get_nowait()
