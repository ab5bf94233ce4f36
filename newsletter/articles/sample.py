"""The sample London Daily feed, its dates moved to the present so a demo always has fresh news."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from newsletter.resources import sample_feed

# How long before `now` the newest sample item appears to have been published.
NEWEST_AGE = timedelta(hours=1)
_DATE_ELEMENT = re.compile(r"<(pubDate|lastBuildDate)>([^<]+)</\1>")


def write_fresh_sample_feed(target: Path, now: datetime) -> Path:
    """Copy examples/london-daily.xml to `target`, every date shifted by one amount so the newest
    item is about an hour before `now` (aware) and the items keep their spread."""
    text = sample_feed().read_text(encoding="utf-8")
    dates = [parsedate_to_datetime(match.group(2)) for match in _DATE_ELEMENT.finditer(text)]
    if not dates:
        raise ValueError(f"{sample_feed()} has no dates to shift")
    shift = (now - NEWEST_AGE) - max(dates)

    def shifted(match: re.Match[str]) -> str:
        element, moved = match.group(1), parsedate_to_datetime(match.group(2)) + shift
        return f"<{element}>{format_datetime(moved.replace(microsecond=0), usegmt=True)}</{element}>"

    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_DATE_ELEMENT.sub(shifted, text), encoding="utf-8")
    return target
