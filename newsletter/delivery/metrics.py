"""Prometheus metrics of delivery, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "newsletter_messages_total",
    "Messages handled by delivery workers, by kind (digest, confirmation) and outcome.",
    ["kind", "outcome"],
)
SMTP_REPLIES = Counter(
    "newsletter_smtp_replies_total", "Final SMTP reply codes of message transactions.", ["code"]
)
SEND_SECONDS = Histogram(
    "newsletter_smtp_send_seconds",
    "Time of one SMTP transaction (MAIL to the reply after the message).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SMTP_UNAVAILABLE = Counter("newsletter_smtp_unavailable_total", "Failed attempts to open an SMTP connection.")
EDITIONS_PAUSED = Counter("newsletter_editions_paused_total", "Editions paused automatically.")
IN_FLIGHT = Gauge("newsletter_delivery_in_flight", "Messages claimed by this process and not yet recorded.")
