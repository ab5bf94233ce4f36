"""Why a webhook request is refused; each error carries the HTTP status it is answered with."""

from __future__ import annotations

from newsletter.errors import NewsletterError


class WebhookError(NewsletterError):
    """A request turned away; its message is one line, safe to answer and to log."""

    status = 400


class Malformed(WebhookError, ValueError):
    """Not a body this provider sends (not JSON, or not the shape of its events)."""


class Unauthenticated(WebhookError, PermissionError):
    """Missing or wrong HTTP credentials (Postmark)."""

    status = 401


class Forbidden(WebhookError, PermissionError):
    """A signature that does not verify, a stale or replayed request, a topic not ours."""

    status = 403


class Unavailable(WebhookError, ConnectionError):
    """What a check needs (SNS's certificate, a subscription's confirmation) could not be had
    now: the provider should try again later."""

    status = 503
