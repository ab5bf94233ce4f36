"""Moments given by users (an article's date, a `since`), made aware and UTC, within range.

`0001-01-01T00:00:00+14:00` is a valid ISO 8601 time whose UTC equivalent falls before year 1,
and `9999-12-31T23:59:59-14:00` one after year 9999: converting either raises OverflowError
deep inside a request. They are refused at the edge instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """`value` in UTC (a naive one taken as UTC already); ValueError outside 1900–9000."""
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"out of range: {value.isoformat()}") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"out of range: {value.isoformat()} (years {EARLIEST.year} to {LATEST.year - 1})")
    return moment


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or time given as text, as `as_utc` makes it; ValueError otherwise."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO date or time: {text!r}") from None
    return as_utc(parsed)


UtcMoment = Annotated[datetime, AfterValidator(as_utc)]
