"""Prometheus metrics of the scheduler."""

from __future__ import annotations

from prometheus_client import Counter

EDITIONS_CREATED = Counter(
    "newsletter_editions_created_total",
    "Editions created, by newsletter and trigger.",
    ["newsletter", "trigger"],
)
JOBS = Counter("newsletter_jobs_total", "Scheduler job runs, by job and outcome.", ["job", "outcome"])
