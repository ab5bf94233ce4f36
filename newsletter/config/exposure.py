"""What a configuration exposes, checked before anything runs.

A service is *exposed* when its links are public (`site.base_url` is not on loopback) or its
listener is (`server.host` is not a loopback address). Exposed, it must have real secrets. Some
settings are wrong anywhere; others are legitimate but dangerous, and get a warning at start.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from newsletter.config.sections import (
    DEFAULT_SECRET,
    ArticlesConfig,
    FeedConfig,
    NewsletterConfig,
    SecurityConfig,
    ServerConfig,
    SiteConfig,
    SmtpConfig,
    SubscriptionsConfig,
)


class Settings(Protocol):
    """The sections these checks read (the whole configuration has them all)."""

    @property
    def site(self) -> SiteConfig: ...
    @property
    def server(self) -> ServerConfig: ...
    @property
    def smtp(self) -> SmtpConfig: ...
    @property
    def security(self) -> SecurityConfig: ...
    @property
    def subscriptions(self) -> SubscriptionsConfig: ...
    @property
    def articles(self) -> ArticlesConfig: ...
    @property
    def feeds(self) -> Sequence[FeedConfig]: ...
    @property
    def newsletters(self) -> Sequence[NewsletterConfig]: ...


MIN_SECRET_CHARS = 16
MIN_DISTINCT_CHARS = 6


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure(settings: Settings) -> str | None:
    """Why the service is exposed (for messages), or None when it is reachable from this host only."""
    base_host = urlsplit(settings.site.base_url).hostname or ""
    if not is_loopback(base_host):
        return f"serving {settings.site.base_url}"
    if not is_loopback(settings.server.host):
        return f"listening on {settings.server.host or 'every interface'}"
    return None


def problem(settings: Settings) -> str | None:
    """The first setting that must change, as "<key>: <why>", or None."""
    for check in (_base_url, _link_ages, _smtp_credentials, _secrets):
        found = check(settings)
        if found:
            return found
    return None


def warnings(settings: Settings) -> list[str]:
    """Settings that are allowed but dangerous, as "<key>: <why>"; logged at start."""
    found: list[str] = []
    exposed = exposure(settings)
    if settings.server.forwarded_allow_ips.strip() == "*":
        found.append(
            'server.forwarded_allow_ips: "*" believes X-Forwarded-For from anyone, so any client can '
            "pose as any address to the signup rate limit; list your proxies instead, unless nothing "
            "but a proxy can reach this listener"
        )
    if exposed and settings.server.metrics == "public":
        found.append(f'server.metrics: "public" while {exposed}: list size and send volume are public')
    if exposed and settings.server.public_api_docs:
        found.append(f"server.public_api_docs: the admin API's schema is public while {exposed}")
    if any(feed.allow_private for feed in settings.feeds):
        found.append(
            "feeds[].allow_private: a feed may be fetched from private and loopback addresses; keep it "
            "to feeds you control"
        )
    return found


def _base_url(settings: Settings) -> str | None:
    parts = urlsplit(settings.site.base_url)
    if parts.query or parts.fragment:
        return "site.base_url: must not carry a query or a fragment (every link is built on it)"
    if parts.username is not None or parts.password is not None:
        return "site.base_url: must not carry a user name or password (it is in every email)"
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        return (
            "site.base_url: use https for a public address: links carry readers' tokens, and "
            "one-click unsubscribe (RFC 8058) needs https"
        )
    return None


def _link_ages(settings: Settings) -> str | None:
    retention = settings.articles.retention_days
    longest = max(newsletter.lookback_hours for newsletter in settings.newsletters)
    if retention and retention * 24 <= longest:
        return (
            f"articles.retention_days: {retention} days would delete articles a newsletter still looks "
            f"back to (lookback_hours = {longest}); keep them longer, or set 0 to keep them for ever"
        )
    confirm = settings.security.confirm_max_age_days
    pending = settings.subscriptions.pending_expiry_days
    if confirm > pending:
        return (
            f"security.confirm_max_age_days: {confirm} is longer than "
            f"subscriptions.pending_expiry_days ({pending}): a confirm link would outlive its signup"
        )
    return None


def _smtp_credentials(settings: Settings) -> str | None:
    for relay in settings.smtp.relay_settings():
        smtp, key = relay.config, f"{relay.key}.security"
        has_credentials = bool(smtp.username or smtp.password.get_secret_value())
        if has_credentials and smtp.security == "none" and not is_loopback(smtp.host):
            return (
                f'{key}: "none" would send the SMTP username and password to {smtp.host} in '
                'clear text; use "starttls" or "tls"'
            )
    return None


def _secrets(settings: Settings) -> str | None:
    exposed = exposure(settings)
    if exposed is None:
        return None
    security = settings.security
    named: list[tuple[str, SecretStr]] = [
        ("secret_key", security.secret_key),
        ("admin_token", security.admin_token),
    ]
    if security.metrics_token.get_secret_value():
        named.append(("metrics_token", security.metrics_token))
    for key, secret in named:
        weak = weakness(secret.get_secret_value())
        if weak:
            return f"security.{key}: {weak} before {exposed}"
    values = [secret.get_secret_value() for _, secret in named]
    if len(set(values)) != len(values):
        others = "security.secret_key and security.metrics_token"
        return f"security.admin_token: must differ from {others} before {exposed}"
    return None


def weakness(secret: str) -> str | None:
    if secret == DEFAULT_SECRET:
        return f"still the built-in default; set a random secret of {MIN_SECRET_CHARS} characters or more"
    if len(secret) < MIN_SECRET_CHARS:
        return f"set a secret of {MIN_SECRET_CHARS} characters or more"
    if len(set(secret)) < MIN_DISTINCT_CHARS:
        return f"too easy to guess (fewer than {MIN_DISTINCT_CHARS} different characters); use a random one"
    return None
