"""The one place that decides what an SMTP reply or a broken connection means for a message."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from newsletter.config import DeliveryConfig
from newsletter.delivery.smtp import SmtpReply

# Recipient-level permanent refusals at RCPT that count as a hard bounce.
HARD_BOUNCE_CODES = {550, 551, 553}


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    code: int | None
    reply: str
    hard_bounce: bool = False


def classify(reply: SmtpReply, *, attempts: int, max_attempts: int) -> Outcome:
    """2xx after the body: sent. 4xx: retry until max_attempts, then failed. 5xx: failed at once."""
    text = str(reply)[:1000]
    if reply.stage == "body" and 200 <= reply.code < 300:
        return Outcome(Verdict.SENT, reply.code, text)
    if 400 <= reply.code < 500:
        verdict = Verdict.RETRY if attempts < max_attempts else Verdict.FAILED
        return Outcome(verdict, reply.code, text)
    hard = reply.stage == "rcpt" and reply.code in HARD_BOUNCE_CODES
    return Outcome(Verdict.FAILED, reply.code, text, hard_bounce=hard)


def connection_lost(reason: str, *, attempts: int, max_attempts: int) -> Outcome:
    """Dropped connections and timeouts mid-transaction: the message may or may not have gone."""
    verdict = Verdict.RETRY if attempts < max_attempts else Verdict.FAILED
    return Outcome(verdict, None, f"connection lost: {reason}"[:1000])


def retry_delay(attempts: int, config: DeliveryConfig) -> float:
    """Exponential backoff with jitter: base × 2^(attempts-1), capped, times a factor in [0.5, 1]."""
    ceiling = min(config.retry_max_seconds, config.retry_base_seconds * 2 ** max(attempts - 1, 0))
    return float(ceiling * random.uniform(0.5, 1.0))
