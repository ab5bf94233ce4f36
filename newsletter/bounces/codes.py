"""Status codes and the phrases that stand in for them: what makes a failure hard or soft.

The status class decides (5 hard, 4 soft), else the SMTP reply code's, except that a message
given up after its retry period is soft even where the report calls that permanent: the
address may be fine. Only without any code do the phrase tables decide, the soft one first
("rejected: mailbox full" is soft); a notice that names neither is soft, since a soft bounce
costs a reader nothing unless it recurs.

| phrases                                                        | kind |
| -------------------------------------------------------------- | ---- |
| retry period ran out, delivery time expired, failed N attempts | soft |
| mailbox full, over quota, timed out, try again, temporary,     | soft |
| connection refused, host unreachable, socket error             |      |
| permanent error, unknown user, no such user/mailbox/domain,    | hard |
| mailbox unavailable, does not exist, domain name not found,    |      |
| invalid recipient, rejected, refused, blocked, spam, policy    |      |
"""

from __future__ import annotations

import re

from newsletter.bounces.report import BounceKind

STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
REPLY = re.compile(r"(?<![\d.#])([245])\d\d(?=[ -]|$)")

GAVE_UP = re.compile(
    r"retry (time|timeout) (not reached|exceeded)|delivery time expired|too long in (the )?queue"
    r"|could not be delivered (with)?in|has been (queued|delayed) for too long|retry period"
    r"|failed \d+ attempts",
    re.IGNORECASE,
)
SOFT_PHRASES = re.compile(
    r"mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?storage|insufficient (system )?storage"
    r"|timed? ?out|try again|temporar|connection (refused|timed out|reset)|unreachable|not reachable"
    r"|no route to host|deferred|too many (connections|messages)|socket error|(could not|unable to) connect"
    r"|did not accept our requests to connect",
    re.IGNORECASE,
)
HARD_PHRASES = re.compile(
    r"permanent (error|failure)|failed permanently"
    r"|user ?unknown|unknown (user|recipient|address|local.?part|host|domain)"
    r"|no such (user|mailbox|recipient|address|domain|person)|no valid recipients"
    r"|mailbox (unavailable|not found|does not exist|is disabled|disabled)"
    r"|not a valid (user|recipient|mailbox)|invalid (recipient|mailbox|address)|(address|recipient) rejected"
    r"|check (if|that|whether) (the )?address"
    r"|does not exist|doesn'?t exist|not exist|存在しない|not listed in"
    r"|(does not|doesn'?t) have an? [^\n]{0,60}?account|account (is )?(disabled|inactive|suspended|expired)"
    r"|unrouteable|host not found|(domain )?name not found|name or service not known"
    r"|rejected|refused|blocked|not permitted|access denied|spam|blacklist|blocklist|policy",
    re.IGNORECASE,
)


def first_status(text: str) -> str | None:
    match = STATUS.search(text)
    return match.group(0) if match else None


def kind_of_failure(status: str | None, text: str, default: BounceKind) -> BounceKind:
    """A returned message's kind from its status code, else its reply code, else its words."""
    if GAVE_UP.search(text):
        return BounceKind.SOFT
    code_class = status[0] if status else _reply_class(text)
    if code_class == "5":
        return BounceKind.HARD
    if code_class == "4":
        return BounceKind.SOFT
    return kind_of_words(text) or default


def kind_of_words(text: str) -> BounceKind | None:
    if SOFT_PHRASES.search(text):
        return BounceKind.SOFT
    if HARD_PHRASES.search(text):
        return BounceKind.HARD
    return None


def _reply_class(text: str) -> str | None:
    match = REPLY.search(text)
    return match.group(1) if match else None
