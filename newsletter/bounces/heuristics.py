"""Bounces in the non-standard shapes: qmail, Exim, Postfix's plain text, Exchange, Yahoo, Domino...

Each reads the human-readable notice: the recipient, the status code (or an SMTP reply code)
and the server's words, and whether it is a warning or a final failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from newsletter.bounces.codes import GAVE_UP, REPLY, STATUS, first_status, kind_of_failure, kind_of_words
from newsletter.bounces.dsn import bare_address
from newsletter.bounces.reading import Part, header, one_line, text_of
from newsletter.bounces.report import BounceKind

DAEMON = re.compile(r"mailer-daemon|postmaster|mail ?delivery|mdaemon|mailadmin", re.IGNORECASE)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status|failure|notification|problem|has failed|failed)|returned mail"
    r"|non-?delivery|failure notice|mail delivery|could not be delivered|delivery report|bounce"
    r"|rejected|failed|warning|delayed",
    re.IGNORECASE,
)
DELAYED = re.compile(
    r"this is a warning message only|delivery (has been |is )?delayed|has been delayed|\bdelayed \d+ hours"
    r"|will (continue|keep) (to )?(try|retry|trying|attempt)|still (be )?(trying|retrying)"
    r"|not yet been delivered|no action is required|delivery (status notification|notification) \(delay\)"
    r"|temporarily deferred|will be retried|retry (for|until)|\bis delayed\b|only a temporary failure"
    r"|could not send (mail|message) for (the )?past",
    re.IGNORECASE,
)
DELAYED_SUBJECT = re.compile(r"^\s*warning\b|could not send (mail|message) for (the )?past", re.IGNORECASE)
# Where the notice ends and the returned original begins.
ORIGINAL_START = re.compile(
    r"^[ \t]*-* ?(below (this line )?is a copy|this is a copy of|-+ ?original message"
    r"|original message (follows|headers|below)|a copy of the original|the header of the original"
    r"|message headers follow"
    r"|included is a copy|your message reads|unsent message (below|follows))"
    r"|^(Return-Path|Received|DKIM-Signature|Message-I[Dd]|Authentication-Results):",
    re.IGNORECASE | re.MULTILINE,
)
# Bounded repeats: an unbounded local part makes a long run of letters cost quadratic time.
ADDRESS = re.compile(
    r"[A-Za-z0-9=?!#$%&'*+/^_`{|}~.-]{1,128}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}"
)
LISTED = re.compile(rf"^[ \t]*(?:[*-][ \t]*)?<?({ADDRESS.pattern})>?(?=[:\s]|$)", re.MULTILINE)
QUOTED_TO = re.compile(r"^To:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
NOT_RECIPIENTS = re.compile(r"^(mailer-daemon|postmaster|double-bounce|root|abuse|noreply|no-reply)@", re.I)
OWN = ("From", "To", "Reply-To")  # the notice's own addresses: its sender and the original's
TAG = re.compile(r"<[^<>]*>")


@dataclass(frozen=True)
class Notice:
    kind: BounceKind
    recipient: str | None
    status: str | None
    diagnostic: str | None


def looks_like_bounce(message: Message) -> bool:
    if header(message, "X-Failed-Recipients"):
        return True
    if DAEMON.search(header(message, "From") or ""):
        return True
    return bool(BOUNCE_SUBJECT.search(header(message, "Subject") or ""))


def read_notice(message: Message, text: str, rest: str) -> Notice:
    subject = header(message, "Subject") or ""
    status = first_status(text)
    diagnostic_line = diagnostic(text)
    if DELAYED.search(text) or DELAYED.search(subject) or DELAYED_SUBJECT.search(subject):
        kind = BounceKind.DELAYED
    else:
        # A notice that names neither code nor cause could be anything: counting it as soft
        # costs a reader nothing until it recurs.
        kind = kind_of_failure(status, text, default=BounceKind.SOFT)
    return Notice(kind, _recipient(message, text) or _quoted_to(rest), status, diagnostic_line)


def split_notice(parts: list[Part]) -> tuple[str, str]:
    """The human-readable notice (text parts up to the returned original) and what follows it."""
    texts: list[str] = []
    for part in parts:
        kind = part.type
        if kind.startswith("message/") or kind in ("text/rfc822-headers", "text/rfc822-header"):
            break
        if kind == "text/plain" or (kind == "text/html" and not texts) or kind.startswith("multipart/"):
            texts.append(_plain(part))
    text = "\n".join(texts)
    match = ORIGINAL_START.search(text)
    if match is None or match.start() == 0:
        return text, ""
    return text[: match.start()], text[match.start() :]


def all_text(parts: list[Part]) -> str:
    return "\n".join(_plain(part) for part in parts if part.type.startswith("text/"))


def _plain(part: Part) -> str:
    text = text_of(part.message)
    return TAG.sub(" ", text) if part.type == "text/html" else text


def _recipient(message: Message, text: str) -> str | None:
    """X-Failed-Recipients; else the first address that starts a line, as the lists of failed
    recipients do; else the first address that is not the notice's own."""
    failed = header(message, "X-Failed-Recipients")
    if failed and (address := bare_address(failed.split(",")[0])):
        return address
    for match in LISTED.finditer(text):
        if not NOT_RECIPIENTS.match(match.group(1)):
            return bare_address(match.group(1))
    own = {a.lower() for name in OWN for a in ADDRESS.findall(header(message, name) or "")}
    for found in ADDRESS.findall(text):
        address = found.strip(".")
        if address.lower() not in own and not NOT_RECIPIENTS.match(address):
            return bare_address(address)
    return None


def _quoted_to(rest: str) -> str | None:
    """The To of an original quoted as text after the notice."""
    match = QUOTED_TO.search(rest)
    found = ADDRESS.search(match.group(1)) if match else None
    return bare_address(found.group(0)) if found else None


def diagnostic(text: str) -> str | None:
    """The line carrying a status or reply code; else the first line naming a cause."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if STATUS.search(line) or REPLY.match(line.strip()):
            return one_line(line)
    for line in lines:
        if kind_of_words(line) is not None or GAVE_UP.search(line) or DELAYED.search(line):
            return one_line(line)
    return None
