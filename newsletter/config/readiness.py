"""What a configuration still lacks to serve readers, said by `config check` beside "OK".

Each is allowed (a configuration on this machine alone runs with them), so they are warnings:
the ones that would stop a public service outright are errors in `exposure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from newsletter.config.bounces import BouncesConfig
from newsletter.config.exposure import is_loopback, weakness
from newsletter.config.sections import (
    DkimConfig,
    FeedConfig,
    SecurityConfig,
    SiteConfig,
    SmtpConfig,
)

# Domains that can never receive (or vouch for) mail: RFC 2606 and RFC 6761.
RESERVED_DOMAINS = ("example", "example.com", "example.net", "example.org", "test", "invalid", "localhost")
EXAMPLE_POSTAL_ADDRESS = SiteConfig.model_fields["postal_address"].default


class Settings(Protocol):
    """The sections these checks read (the whole configuration has them all)."""

    @property
    def site(self) -> SiteConfig: ...
    @property
    def smtp(self) -> SmtpConfig: ...
    @property
    def dkim(self) -> DkimConfig: ...
    @property
    def security(self) -> SecurityConfig: ...
    @property
    def feeds(self) -> Sequence[FeedConfig]: ...
    @property
    def bounces(self) -> BouncesConfig: ...


def readiness(settings: Settings) -> list[str]:
    """What to set before readers depend on this configuration, as "<key>: <why>"."""
    return [
        *_secrets(settings),
        *_site(settings.site),
        *_feeds(settings.feeds),
        *_smtp(settings.smtp),
        *_dkim(settings.dkim),
        *_bounces(settings.bounces),
    ]


def _secrets(settings: Settings) -> list[str]:
    # Only a service on this machine alone gets here with weak secrets: `exposure` refuses them
    # for a public one.
    security = settings.security
    found = []
    for key, secret in (("secret_key", security.secret_key), ("admin_token", security.admin_token)):
        if why := weakness(secret.get_secret_value()):
            found.append(f"security.{key}: {why} (required once the service is public)")
    return found


def _site(site: SiteConfig) -> list[str]:
    found = []
    base = site.base_url
    if is_loopback(urlsplit(base).hostname or ""):
        found.append(
            f"site.base_url: {base} is this machine only: readers cannot open the links in their "
            "emails; set the public https address"
        )
    if site.postal_address == EXAMPLE_POSTAL_ADDRESS:
        found.append(
            "site.postal_address: still the built-in example; bulk email must give the sender's real "
            "postal address (CAN-SPAM)"
        )
    return found


def _feeds(feeds: Sequence[FeedConfig]) -> list[str]:
    if feeds:
        return []
    return ["feeds: none configured: digests carry only articles added by hand (`newsletter articles add`)"]


def _smtp(smtp: SmtpConfig) -> list[str]:
    found = []
    for relay in smtp.relay_settings():
        config, key = relay.config, relay.key
        if is_loopback(config.host):
            continue
        if config.security == "none":
            found.append(
                f'{key}.security: "none" to {config.host}: digests and their readers\' links cross the '
                'network unencrypted; use "starttls" or "tls"'
            )
        elif not config.validate_certs:
            found.append(f"{key}.validate_certs: false: anyone on the way to {config.host} can pose as it")
    if _reserved(smtp.sender_domain):
        found.append(
            f"smtp.from_address: {smtp.from_address} is at a reserved domain: receivers refuse or "
            "junk its mail; use an address at your own domain"
        )
    return found


def _dkim(dkim: DkimConfig) -> list[str]:
    if dkim.enabled:
        return []
    return [
        "dkim: not set: Gmail and Yahoo expect bulk mail signed with DKIM; set dkim.selector, "
        "dkim.domain and dkim.private_key_file"
    ]


def _bounces(bounces: BouncesConfig) -> list[str]:
    hooks = bounces.webhooks
    hears = bounces.verp or bounces.mailbox.enabled
    if (
        hears
        or hooks.ses_enabled
        or hooks.postmark_enabled
        or hooks.sendgrid_enabled
        or hooks.mailgun_enabled
    ):
        return []
    return [
        "bounces: nothing hears bounces or complaints after the relay accepts a message: readers whose "
        "addresses died are mailed for ever; set bounces.domain (VERP and the receiver), "
        "[bounces.mailbox] or a provider's webhook (docs/bounces.md)"
    ]


def _reserved(domain: str) -> bool:
    return any(domain == reserved or domain.endswith(f".{reserved}") for reserved in RESERVED_DOMAINS)
