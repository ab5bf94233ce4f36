"""Typed configuration: a TOML file plus NEWSLETTER_<SECTION>__<KEY> overrides, loaded once and
passed in. `sections` holds the typed sections, `settings` the whole, `loading` how it is read,
`exposure` what a configuration exposes."""

from __future__ import annotations

from newsletter.config.bounces import BouncesConfig, MailboxConfig, WebhooksConfig
from newsletter.config.exposure import warnings
from newsletter.config.loading import DEFAULT_CONFIG_FILE, find_config_file, load_settings, mask_secrets
from newsletter.config.sections import (
    DEFAULT_SECRET,
    ArticlesConfig,
    ConsoleConfig,
    DatabaseConfig,
    DeliveryConfig,
    DkimConfig,
    FeedConfig,
    IngestConfig,
    LoggingConfig,
    NewsletterConfig,
    SchedulerConfig,
    SecurityConfig,
    ServerConfig,
    SiteConfig,
    SmtpConfig,
    SubscriptionsConfig,
    TrackingConfig,
)
from newsletter.config.settings import ENV_PREFIX, Settings
from newsletter.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_SECRET",
    "ENV_PREFIX",
    "ArticlesConfig",
    "TrackingConfig",
    "ConsoleConfig",
    "BouncesConfig",
    "ConfigError",
    "DatabaseConfig",
    "DeliveryConfig",
    "DkimConfig",
    "FeedConfig",
    "IngestConfig",
    "LoggingConfig",
    "MailboxConfig",
    "NewsletterConfig",
    "SchedulerConfig",
    "SecurityConfig",
    "ServerConfig",
    "Settings",
    "SiteConfig",
    "SmtpConfig",
    "SubscriptionsConfig",
    "WebhooksConfig",
    "find_config_file",
    "load_settings",
    "mask_secrets",
    "warnings",
]
