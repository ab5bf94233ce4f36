"""One hierarchy for the errors the service raises on purpose."""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the service raises deliberately."""


class ConfigError(NewsletterError, ValueError):
    """The configuration is missing, unreadable or invalid (exit status 2); `setting` names the
    key where one is to blame."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class DatabaseUnavailable(NewsletterError, ConnectionError):
    """The database cannot be reached (exit status 2 on the CLI)."""


class InvalidInput(NewsletterError, ValueError):
    """Input from a user or a file was rejected; `field` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(NewsletterError, LookupError):
    """A record asked for by id or address does not exist."""


class InvalidToken(NewsletterError, ValueError):
    """A signed link token is forged, truncated, expired or for another purpose."""


class RenderError(NewsletterError, ValueError):
    """A digest or an email cannot be rendered or assembled (a template fault): nothing about
    one reader, so every message built from it would fail alike."""
