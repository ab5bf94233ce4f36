"""Prometheus metrics of bounces and complaints, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter

BOUNCES = Counter(
    "newsletter_bounces_total",
    "Bounces, complaints and auto-replies received after acceptance, by source, kind and outcome.",
    ["source", "kind", "outcome"],
)
