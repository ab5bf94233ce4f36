"""The one place that decides what every outcome means: an SMTP reply, a dropped connection, a
timeout, a message that could not be built, a reader who left, a connection that could not be
opened, a failure rate that should pause an edition, a bounce that should stop a reader's mail.

Everything here is a pure function returning a typed decision; the worker carries it out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from newsletter.config import DeliveryConfig
from newsletter.delivery.smtp import ReplyCode, SmtpConfigFault, SmtpReply, SmtpUnavailable

# Recipient-level permanent refusals at RCPT that count as a hard bounce.
HARD_BOUNCE_CODES = frozenset(
    {ReplyCode.MAILBOX_UNAVAILABLE, ReplyCode.USER_NOT_LOCAL, ReplyCode.MAILBOX_NAME_INVALID}
)
REPLY_CHARS = 1000


class Action(StrEnum):
    """What becomes of a message's row (its new status; RELEASED: back to the queue untried)."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    RELEASED = "released"


@dataclass(frozen=True)
class Decision:
    action: Action
    reply: str = ""
    code: int | None = None
    hard_bounce: bool = False
    # RETRY: seconds until the next attempt; RELEASED: seconds before it may be claimed again.
    delay: float | None = None
    # Beyond this message: the edition must pause for this reason (it is no reader's fault).
    pause_edition: str | None = None


def after_reply(reply: SmtpReply, *, attempts: int, max_attempts: int, config: DeliveryConfig) -> Decision:
    """2xx to the body: sent. 4xx: retried until max_attempts, then failed. 5xx: failed at once,
    a hard bounce when the recipient itself was refused at RCPT."""
    text = str(reply)[:REPLY_CHARS]
    if reply.stage == "body" and 200 <= reply.code < 300:
        return Decision(Action.SENT, text, reply.code)
    if 400 <= reply.code < 500:
        return _again(text, reply.code, attempts, max_attempts, config)
    hard = reply.stage == "rcpt" and reply.code in HARD_BOUNCE_CODES
    return Decision(Action.FAILED, text, reply.code, hard_bounce=hard)


def after_lost_connection(
    reason: str, *, attempts: int, max_attempts: int, config: DeliveryConfig
) -> Decision:
    """Dropped mid-transaction or timed out: the message may or may not have gone; try again
    (a resend carries the same Message-ID)."""
    return _again(f"connection lost: {reason}"[:REPLY_CHARS], None, attempts, max_attempts, config)


def after_refusal(refusal: str) -> Decision:
    """The worker's re-check said no: the edition stopped (hand back), or the reader left (skip)."""
    if refusal == RECHECK_RELEASE:
        return Decision(Action.RELEASED)
    return Decision(Action.SKIPPED, refusal)


RECHECK_RELEASE = "released"


def unbuildable_for_reader(error: str) -> Decision:
    """This reader's own values cannot make a message (an address that cannot be sent): theirs
    alone fails."""
    return Decision(Action.FAILED, f"message could not be built: {error}"[:REPLY_CHARS])


def unbuildable_variant(error: str, *, edition_id: int | None, retry_seconds: float) -> Decision:
    """The template or variant cannot make anyone's message: no reader's delivery fails for it.
    An edition pauses (resumed once fixed); a confirmation is tried again later."""
    if edition_id is None:
        return Decision(Action.RELEASED, delay=retry_seconds)
    reason = f"messages could not be built: {error}; fix it, then `newsletter editions resume {edition_id}`"
    return Decision(Action.RELEASED, pause_edition=reason)


def smtputf8_unsupported() -> Decision:
    return Decision(Action.FAILED, "the SMTP server does not support SMTPUTF8 for this address")


def delivered(reply: SmtpReply) -> bool:
    """A test copy's verdict: the server took the message itself."""
    return reply.stage == "body" and 200 <= reply.code < 300


class ConnectionAction(StrEnum):
    WAIT = "wait"  # the relay is away: wait and try again, spending no message's attempts
    STOP = "stop"  # the configuration is wrong: stop using the relay until it is fixed


@dataclass(frozen=True)
class ConnectionDecision:
    action: ConnectionAction
    reason: str
    setting: str | None = None


def after_open_failure(error: SmtpUnavailable) -> ConnectionDecision:
    """A relay that refused a connection: down for now, or misconfigured for good (a wrong
    password retried would get the account locked; a rejected certificate stays rejected)."""
    if isinstance(error, SmtpConfigFault):
        return ConnectionDecision(ConnectionAction.STOP, str(error), error.setting)
    return ConnectionDecision(ConnectionAction.WAIT, str(error))


def reconnect_pause(previous: float, config: DeliveryConfig) -> float:
    """The next wait between attempts to reach a relay that is away: doubling, capped."""
    return min(max(previous * 2, 0.25), config.server_down_max_backoff)


def pause_reason(
    edition_id: int, *, sent: int, failed: int, total: int, rate: float, window: int
) -> str | None:
    """Why an edition should pause itself, or None: more than `rate` of its first `window`
    attempts failed permanently (past the window it no longer pauses itself)."""
    attempted = sent + failed
    allowed = rate * min(window, max(total, 1))
    if attempted > window + 1 or failed <= allowed:
        return None
    return (
        f"paused automatically: {failed} of the first {attempted} attempts failed permanently "
        f"(more than {rate:.0%}); check the SMTP replies, then `newsletter editions resume {edition_id}`"
    )


def becomes_bounced(hard_bounces: int, threshold: int) -> bool:
    """After this many hard bounces a reader is marked bounced and mailed no more."""
    return hard_bounces >= threshold


def retry_delay(attempts: int, config: DeliveryConfig) -> float:
    """Exponential backoff with jitter: base × 2^(attempts-1), capped, times a factor in [0.5, 1]."""
    ceiling = min(config.retry_max_seconds, config.retry_base_seconds * 2 ** max(attempts - 1, 0))
    return float(ceiling * random.uniform(0.5, 1.0))


def _again(text: str, code: int | None, attempts: int, max_attempts: int, config: DeliveryConfig) -> Decision:
    if attempts < max_attempts:
        return Decision(Action.RETRY, text, code, delay=retry_delay(attempts, config))
    return Decision(Action.FAILED, text, code)
