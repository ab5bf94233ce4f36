"""Prometheus counters of clicks and opens."""

from __future__ import annotations

from prometheus_client import Counter

CLICKS = Counter(
    "newsletter_clicks_total",
    "Tracked link clicks and per-reader opens, by newsletter, kind and whether they counted as a reader's",
    ["newsletter", "kind", "counted"],
)
