"""SMTP, as the worker speaks it: a session per connection (`session`), opened by aiosmtplib
(`opening`), then run over its own reply reader (`protocol`); replies and errors as types."""

from __future__ import annotations

from newsletter.delivery.smtp.errors import OpenFailure, SmtpConnectionLost, SmtpTimeout, SmtpUnavailable
from newsletter.delivery.smtp.protocol import dot_stuff
from newsletter.delivery.smtp.replies import ReplyCode, SmtpReply
from newsletter.delivery.smtp.session import SmtpSession

__all__ = [
    "OpenFailure",
    "ReplyCode",
    "SmtpConnectionLost",
    "SmtpReply",
    "SmtpSession",
    "SmtpTimeout",
    "SmtpUnavailable",
    "dot_stuff",
]
