"""The replay window: a signed request's time must be near ours, and (Mailgun) its token new."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from newsletter.bounces.webhooks.errors import Forbidden

MAX_TOKENS = 100_000


def check_fresh(moment: datetime, now: datetime, max_age_seconds: int) -> None:
    """Refuse a request signed more than `max_age_seconds` before (or after) `now`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        stale = abs(now - moment) > timedelta(seconds=max_age_seconds)
    except OverflowError:  # a time at the very edge of the calendar, in UTC
        stale = True
    if stale:
        raise Forbidden("the request's timestamp is outside the allowed window (stale or replayed)")


def from_unix(value: object) -> datetime:
    """A Unix time as a header or a JSON field gives it ("1529006854", 1529006854.37)."""
    try:
        seconds = float(value) if isinstance(value, int | float | str) and value != "" else None
    except ValueError:
        seconds = None
    if seconds is None or not 0 <= seconds < 1e11:  # NaN fails both comparisons
        raise Forbidden("the request's timestamp is missing or not a Unix time")
    return datetime.fromtimestamp(seconds, UTC)


class SeenTokens:
    """Tokens of signed requests already accepted, kept as long as their timestamps may be fresh.

    In process memory, bounded: several web processes each keep their own, and past
    `MAX_TOKENS` within one window the oldest are forgotten. The recorder's event keys still
    make a replayed event change nothing; this refuses the replayed request itself.
    """

    def __init__(self, max_age_seconds: int, limit: int = MAX_TOKENS) -> None:
        # A timestamp up to max_age ahead of our clock stays fresh until 2 x max_age from now.
        self.keep = timedelta(seconds=2 * max_age_seconds)
        self.limit = limit
        self._seen: OrderedDict[str, datetime] = OrderedDict()

    def claim(self, token: str, now: datetime) -> None:
        self._forget_before(now - self.keep)
        if token in self._seen:
            raise Forbidden("the request's token was seen before (replayed)")
        self._seen[token] = now
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)

    def release(self, token: str) -> None:
        """The request was not handled after all (the database was away): its retry is welcome."""
        self._seen.pop(token, None)

    def _forget_before(self, cutoff: datetime) -> None:
        while self._seen:
            token, at = next(iter(self._seen.items()))
            if at >= cutoff:
                return
            del self._seen[token]
