"""The one place that decides what every outcome means: an SMTP reply, a dropped connection, a
timeout, a message that could not be built, a reader who left, a connection that could not be
opened, a configuration the relay refused, a failure rate that should pause an edition, a bounce
that should stop a reader's mail.

Everything here is a pure function from facts to a typed decision; the worker carries it out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from newsletter.config import DeliveryConfig
from newsletter.delivery.recheck import Refusal
from newsletter.delivery.smtp import OpenFailure, ReplyCode, SmtpReply, SmtpUnavailable
from newsletter.delivery.work import Action
from newsletter.errors import ConfigError

# Recipient-level permanent refusals at RCPT that count as a hard bounce.
HARD_BOUNCE_CODES = frozenset(
    {ReplyCode.MAILBOX_UNAVAILABLE, ReplyCode.USER_NOT_LOCAL, ReplyCode.MAILBOX_NAME_INVALID}
)
REPLY_CHARS = 1000
# Failures to open a connection that waiting will not mend: the operator must change a setting.
MISCONFIGURED = frozenset({OpenFailure.CERTIFICATE_REJECTED, OpenFailure.NO_STARTTLS, OpenFailure.NO_LOGIN})


class FaultScope(StrEnum):
    RELAY = "relay"  # this relay is out of rotation until fixed; the others carry on
    SERVICE = "service"  # nothing can be sent until fixed (a bad DKIM key): sending stops


@dataclass(frozen=True)
class Fault:
    """A configuration fault: retrying will not help, and no reader's message is to blame."""

    scope: FaultScope
    reason: str  # one line for the operator, naming `setting`
    setting: str | None = None


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
    # Beyond this message: the configuration is at fault (the message goes back untried).
    fault: Fault | None = None


# -- one message ------------------------------------------------------------------------------


def after_reply(
    reply: SmtpReply, *, attempts: int, max_attempts: int, config: DeliveryConfig, relay: str = "smtp"
) -> Decision:
    """2xx to the body: sent. 4xx: retried until max_attempts, then failed. 5xx: failed at once,
    a hard bounce when the recipient itself was refused at RCPT; but a 5xx to MAIL FROM refuses
    our sender, whoever the reader: the relay's configuration is at fault, not the message."""
    text = str(reply)[:REPLY_CHARS]
    if reply.stage == "body" and 200 <= reply.code < 300:
        return Decision(Action.SENT, text, reply.code)
    if 400 <= reply.code < 500:
        return _again(text, reply.code, attempts, max_attempts, config)
    if reply.stage == "mail" and reply.code >= 500:
        setting = f"{relay}.username" if reply.code == ReplyCode.AUTH_REQUIRED else "smtp.from_address"
        reason = f"{setting}: the relay {relay} refuses our sender: {text}"
        return Decision(Action.RELEASED, text, reply.code, fault=Fault(FaultScope.RELAY, reason, setting))
    hard = reply.stage == "rcpt" and reply.code in HARD_BOUNCE_CODES
    return Decision(Action.FAILED, text, reply.code, hard_bounce=hard)


def after_lost_connection(
    reason: str, *, attempts: int, max_attempts: int, config: DeliveryConfig
) -> Decision:
    """Dropped mid-transaction or timed out: the message may or may not have gone; try again
    (a resend carries the same Message-ID)."""
    return _again(f"connection lost: {reason}"[:REPLY_CHARS], None, attempts, max_attempts, config)


def after_refusal(refusal: Refusal) -> Decision:
    """The worker's re-check said no: the edition stopped (hand back), or the reader left (skip)."""
    if refusal is Refusal.EDITION_STOPPED:
        return Decision(Action.RELEASED)
    return Decision(Action.SKIPPED, refusal.value)


def after_lost_lease() -> Decision:
    """The row was taken back while this worker could not renew its lease (the database was
    away): another worker may be sending it, so this one sends nothing and records nothing new."""
    return Decision(Action.RELEASED)


def invalid_recipient(error: str) -> Decision:
    """An address no SMTP server could be given (a control character): never sendable."""
    return Decision(Action.FAILED, f"invalid recipient: {error}"[:REPLY_CHARS])


def smtputf8_unsupported() -> Decision:
    return Decision(Action.FAILED, "the SMTP server does not support SMTPUTF8 for this address")


def after_build_failure(
    error: Exception, *, template: bool, edition_id: int | None, retry_seconds: float
) -> Decision:
    """A message that could not be built. The configuration at fault (a DKIM key that cannot
    sign): nothing can be sent until it is fixed. The template or variant at fault (`template`):
    nobody's delivery fails; an edition pauses (resumed once fixed), a confirmation is tried
    again later. This reader's own values at fault: theirs alone fails."""
    if isinstance(error, ConfigError):
        return Decision(Action.RELEASED, fault=Fault(FaultScope.SERVICE, str(error), error.setting))
    if not template:
        return Decision(Action.FAILED, f"message could not be built: {error}"[:REPLY_CHARS])
    described = f"newsletter {error} is not configured" if isinstance(error, KeyError) else str(error)
    if edition_id is None:
        return Decision(Action.RELEASED, described[:REPLY_CHARS], delay=retry_seconds)
    return Decision(
        Action.RELEASED, described[:REPLY_CHARS], pause_edition=unbuildable(described, edition_id)
    )


def unbuildable(error: str, edition_id: int) -> str:
    """Why an edition paused when its messages (or its variants) could not be built."""
    return f"could not be built: {error}; fix it, then `newsletter editions resume {edition_id}`"


def delivered(reply: SmtpReply) -> bool:
    """A test copy's verdict: the server took the message itself."""
    return reply.stage == "body" and 200 <= reply.code < 300


# -- a connection -----------------------------------------------------------------------------


class ConnectionAction(StrEnum):
    WAIT = "wait"  # the relay is away: wait and try again, spending no message's attempts
    STOP = "stop"  # the configuration is wrong: stop using the relay until it is fixed


@dataclass(frozen=True)
class ConnectionDecision:
    action: ConnectionAction
    reason: str
    setting: str | None = None


def after_open_failure(error: SmtpUnavailable) -> ConnectionDecision:
    """A relay that could not be opened: away for now, or misconfigured for good. A refused
    password retried would get the account locked; a rejected certificate stays rejected. A
    login refused with a 4xx (454: try again later) is the moment's, not the configuration's."""
    temporary_login = error.failure is OpenFailure.LOGIN_REFUSED and _temporary(error.code)
    if error.failure in MISCONFIGURED or (error.failure is OpenFailure.LOGIN_REFUSED and not temporary_login):
        reason = f"{error.setting}: {error}" if error.setting else str(error)
        return ConnectionDecision(ConnectionAction.STOP, reason, error.setting)
    return ConnectionDecision(ConnectionAction.WAIT, str(error))


def reconnect_pause(previous: float, config: DeliveryConfig) -> float:
    """The next wait between attempts to reach a relay that is away: doubling, capped."""
    return min(max(previous * 2, 0.25), config.server_down_max_backoff)


# -- editions and readers ---------------------------------------------------------------------


def should_pause(*, sent: int, failed: int, total: int, rate: float, window: int) -> bool:
    """An edition pauses itself when more than `rate` of its first `window` attempts (of the
    whole edition, when smaller) failed permanently; past the window it no longer does."""
    attempted = sent + failed
    allowed = rate * min(window, max(total, 1))
    return attempted <= window + 1 and failed > allowed


def pause_reason(
    edition_id: int, *, sent: int, failed: int, rate: float, replies: Sequence[tuple[str, int]]
) -> str:
    """What an operator is told when an edition paused itself: the counts, and the replies
    behind them, most frequent first (`replies`: each reply with how many rows got it)."""
    common = "; ".join(f"{count} × {reply}" for reply, count in replies) or "no reply recorded"
    return (
        f"paused automatically: {failed} of the first {sent + failed} attempts failed permanently "
        f"(more than {rate:.0%}); most often: {common}. See `newsletter editions show {edition_id} "
        f"--failures`, then `newsletter editions resume {edition_id}`"
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


def _temporary(code: int | None) -> bool:
    return code is not None and 400 <= code < 500
