"""What can go wrong on a connection: it could not be opened (and why), or it broke mid-message."""

from __future__ import annotations

from enum import StrEnum

from newsletter.errors import NewsletterError


class OpenFailure(StrEnum):
    """What went wrong while opening a connection (what it means is delivery.decisions' to say)."""

    UNREACHABLE = "unreachable"  # refused, timed out, dropped, or the TLS handshake failed
    LOGIN_REFUSED = "login refused"  # AUTH answered with an error (`code` tells which)
    CERTIFICATE_REJECTED = "certificate rejected"
    NO_STARTTLS = "no starttls"  # security = "starttls", but the server does not offer it
    NO_LOGIN = "no login"  # credentials configured, but the server offers no way to log in


class SmtpUnavailable(NewsletterError, ConnectionError):
    """No usable connection; no message was tried. `setting` names the configuration key
    involved, where one is."""

    def __init__(
        self,
        message: str,
        *,
        failure: OpenFailure = OpenFailure.UNREACHABLE,
        code: int | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.code = code
        self.setting = setting


class SmtpConnectionLost(NewsletterError, ConnectionError):
    """The connection broke or timed out during a transaction: the outcome is unknown."""


class SmtpTimeout(SmtpConnectionLost, TimeoutError):
    """The server did not answer within `smtp.timeout` during a transaction."""
