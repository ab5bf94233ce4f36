"""The whole configuration, built once by `load_settings` and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from newsletter.config import exposure
from newsletter.config.bounces import BouncesConfig
from newsletter.config.sections import (
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
from newsletter.errors import InvalidInput

ENV_PREFIX = "NEWSLETTER_"


def _default_newsletters() -> list[NewsletterConfig]:
    return [NewsletterConfig(id="daily", name="The Daily Briefing")]


class Settings(BaseSettings):
    """The whole configuration. Build it with `load_settings`, then pass it in."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    site: SiteConfig = SiteConfig()
    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()
    smtp: SmtpConfig = SmtpConfig()
    dkim: DkimConfig = DkimConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    bounces: BouncesConfig = BouncesConfig()
    security: SecurityConfig = SecurityConfig()
    subscriptions: SubscriptionsConfig = SubscriptionsConfig()
    ingest: IngestConfig = IngestConfig()
    articles: ArticlesConfig = ArticlesConfig()
    tracking: TrackingConfig = TrackingConfig()
    console: ConsoleConfig = ConsoleConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    logging: LoggingConfig = LoggingConfig()
    feeds: list[FeedConfig] = []
    newsletters: list[NewsletterConfig] = Field(default_factory=_default_newsletters)

    _source: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment overrides them.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        ids = [n.id for n in self.newsletters]
        if len(set(ids)) != len(ids):
            raise ValueError("newsletters: two newsletters share an id")
        if not self.newsletters:
            raise ValueError("newsletters: at least one newsletter is needed")
        relays = {relay.name for relay in self.smtp.relays}
        for index, newsletter in enumerate(self.newsletters):
            unknown = set(newsletter.relays) - relays
            if unknown:
                raise ValueError(f"newsletters.{index}.relays: no relay named {', '.join(sorted(unknown))}")
        found = exposure.problem(self)
        if found:
            raise ValueError(found)
        return self

    @property
    def source(self) -> Path | None:
        """The file the settings were read from, or None for built-in defaults."""
        return self._source

    def newsletter(self, newsletter_id: str) -> NewsletterConfig:
        """The newsletter with this id; KeyError for one not configured."""
        for newsletter in self.newsletters:
            if newsletter.id == newsletter_id:
                return newsletter
        raise KeyError(newsletter_id)

    def find_newsletter(self, newsletter_id: str | None, *, field: str = "newsletter") -> NewsletterConfig:
        """The newsletter a user named (None: the first configured), for the CLI, the API, the
        pages and the jobs alike; InvalidInput naming `field` and the configured ids otherwise."""
        if newsletter_id is None:
            return self.newsletters[0]
        try:
            return self.newsletter(newsletter_id)
        except KeyError:
            known = ", ".join(n.id for n in self.newsletters)
            raise InvalidInput(field, f"unknown newsletter {newsletter_id!r} (configured: {known})") from None

    def known_sections(self) -> list[str]:
        """Sections a reader may choose, in a stable order."""
        if self.site.sections:
            return list(self.site.sections)
        names: list[str] = []
        for section in [f.section for f in self.feeds] + [s for n in self.newsletters for s in n.sections]:
            if section and section not in names:
                names.append(section)
        return names

    def sections_of(self, newsletter: NewsletterConfig) -> list[str]:
        return list(newsletter.sections) or self.known_sections()
