"""SMTP replies: the codes this service acts on, and a reply with the stage it answered."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ReplyCode(IntEnum):
    """The SMTP reply codes this service acts on (RFC 5321 §4.2.3); others are read by class."""

    OK = 250
    WILL_FORWARD = 251
    START_INPUT = 354
    CLOSING = 421  # the server is closing the connection
    MAILBOX_BUSY = 450
    LOCAL_ERROR = 451
    NO_STORAGE = 452
    AUTH_REQUIRED = 530
    AUTH_FAILED = 535
    MAILBOX_UNAVAILABLE = 550
    USER_NOT_LOCAL = 551
    STORAGE_EXCEEDED = 552
    MAILBOX_NAME_INVALID = 553
    TRANSACTION_FAILED = 554


ACCEPTED = (ReplyCode.OK,)
RECIPIENT_OK = (ReplyCode.OK, ReplyCode.WILL_FORWARD)
GO_AHEAD = (ReplyCode.START_INPUT,)


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str
    # Where the reply came from: mail, rcpt, data or body (the reply to the message itself).
    stage: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()
