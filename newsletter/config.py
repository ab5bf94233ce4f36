"""Typed configuration: a TOML file plus NEWSLETTER_<SECTION>__<KEY> overrides, loaded once."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from newsletter.errors import ConfigError

ENV_PREFIX = "NEWSLETTER_"
DEFAULT_CONFIG_FILE = Path("newsletter.toml")
DEFAULT_SECRET = "change-me"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def _email_address(value: str) -> str:
    if not value:
        return value
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not an email address: {value!r} ({exc})") from None


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone: {value!r}") from None
    return value


def _no_line_breaks(value: str) -> str:
    if re.search(r"[\r\n\x00]", value):
        raise ValueError("must not contain line breaks or NUL characters")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
TimezoneName = Annotated[str, AfterValidator(_timezone)]
HeaderText = Annotated[str, AfterValidator(_no_line_breaks)]
SectionName = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_no_line_breaks)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(Section):
    name: HeaderText = "London Daily"
    tagline: str = "Focus on the big picture."
    base_url: HttpUrl = "http://localhost:8000"
    postal_address: str = "1 Example Street, London"
    language: str = Field(default="en", pattern=r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")
    # Sections a reader can choose; empty means the sections named by feeds and newsletters.
    sections: list[SectionName] = []
    # A folder whose files override the built-in email and page templates.
    templates_dir: Path | None = None


class DatabaseConfig(Section):
    url: str = "sqlite:///var/newsletter.db"
    pool_size: int = Field(default=5, ge=1, le=100)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("sqlite", "sqlite+aiosqlite", "postgresql", "postgresql+psycopg"):
            raise ValueError(f"must start with sqlite:/// or postgresql+psycopg:// (got {scheme or value!r})")
        return value


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # The admin API takes lists of articles and subscribers: a larger limit behind its token.
    max_api_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Proxies whose X-Forwarded-For is believed (comma-separated IPs, or "*").
    forwarded_allow_ips: str = "127.0.0.1"
    # Idle keep-alive connections are closed after this many seconds. Longer than the idle
    # timeout of the proxies usually in front (nginx, load balancers: 60 s), so that they close
    # first: a connection we close just as a client reuses it fails that client's request.
    keep_alive_seconds: int = Field(default=75, ge=1, le=3600)
    # The parts `newsletter serve` runs in its one process.
    web: bool = True
    scheduler: bool = True
    worker: bool = True


class SmtpConfig(Section):
    host: str = "localhost"
    port: int = Field(default=1025, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str = ""
    password: SecretStr = SecretStr("")
    validate_certs: bool = True
    from_address: EmailAddress = "briefing@londondaily.example"
    from_name: HeaderText = "London Daily"
    reply_to: EmailAddress = ""
    # A mailbox that unsubscribes whoever writes to it, offered in List-Unsubscribe.
    list_unsubscribe_mailto: EmailAddress = ""
    helo_name: str = ""
    concurrency: int = Field(default=8, ge=1, le=500)
    rate_limit: float = Field(default=0, ge=0)
    max_attempts: int = Field(default=5, ge=1, le=100)
    timeout: float = Field(default=30, gt=0, le=3600)
    messages_per_connection: int = Field(default=1000, ge=1)


class DkimConfig(Section):
    selector: str = ""
    domain: str = ""
    private_key_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> DkimConfig:
        given = [bool(self.selector), bool(self.domain), self.private_key_file is not None]
        if any(given) and not all(given):
            raise ValueError("selector, domain and private_key_file go together")
        if self.private_key_file is not None and not self.private_key_file.is_file():
            raise ValueError(f"private_key_file not found: {self.private_key_file}")
        return self

    @property
    def enabled(self) -> bool:
        return self.private_key_file is not None


class DeliveryConfig(Section):
    batch_size: int = Field(default=500, ge=1, le=10_000)
    lease_seconds: int = Field(default=300, ge=10)
    retry_base_seconds: float = Field(default=60, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    # Hard bounces after which a subscriber is marked bounced and mailed no more.
    bounce_threshold: int = Field(default=1, ge=1)
    # Pause an edition when more than this share of its first `pause_window` attempts fail.
    pause_failure_rate: float = Field(default=0.05, gt=0, le=1)
    pause_window: int = Field(default=1000, ge=1)
    # Longest wait between connection attempts while the SMTP server is down.
    server_down_max_backoff: float = Field(default=60, gt=0)
    idle_poll_seconds: float = Field(default=2, gt=0)


class SecurityConfig(Section):
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    admin_token: SecretStr = SecretStr(DEFAULT_SECRET)
    confirm_max_age_days: int = Field(default=7, ge=1)


class SubscriptionsConfig(Section):
    double_opt_in: bool = True
    rate_limit_per_minute: int = Field(default=10, ge=1)
    confirmation_resend_minutes: int = Field(default=10, ge=0)
    pending_expiry_days: int = Field(default=7, ge=1)
    # Look up the domain's MX records at signup (needs DNS).
    check_deliverability: bool = False


class IngestConfig(Section):
    timeout: float = Field(default=20, gt=0)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    user_agent: str = "newsletter/0.1 (+https://github.com/newsletter; feed digest)"
    max_title_chars: int = Field(default=200, ge=20)
    max_summary_chars: int = Field(default=600, ge=40)


class FeedConfig(Section):
    url: str
    section: SectionName | None = None
    name: str | None = None
    poll_minutes: int = Field(default=15, ge=1)

    @field_validator("url")
    @classmethod
    def _url_or_path(cls, value: str) -> str:
        if "://" in value:
            return _http_url(value)
        if not value.strip():
            raise ValueError("must be an http(s) URL or a file path")
        return value

    @property
    def is_remote(self) -> bool:
        return "://" in self.url


class NewsletterConfig(Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    name: HeaderText
    description: str = ""
    schedule: str = "0 7 * * *"
    timezone: TimezoneName = "Europe/London"
    max_articles: int = Field(default=12, ge=1, le=100)
    lookback_hours: int = Field(default=24, ge=1)
    sections: list[SectionName] = []
    # Python format string; {name}, {site} and {date} are filled in.
    subject: HeaderText = "{name}: {date}"
    send_when_empty: bool = False
    deliver_at_local_time: bool = False
    reply_to: EmailAddress = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""

    @model_validator(mode="after")
    def _cron(self) -> NewsletterConfig:
        try:
            CronTrigger.from_crontab(self.schedule, timezone=ZoneInfo(self.timezone))
        except ValueError as exc:
            raise ValueError(f"schedule: invalid cron expression {self.schedule!r}: {exc}") from None
        try:
            self.subject.format(name="", site="", date="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"subject: bad placeholder {exc}") from None
        return self


class SchedulerConfig(Section):
    # A scheduled edition missed while the service was down is made up within this many hours.
    grace_hours: float = Field(default=6, ge=0)
    sweep_seconds: int = Field(default=30, ge=1)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = Field(default=False, alias="json")


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
    security: SecurityConfig = SecurityConfig()
    subscriptions: SubscriptionsConfig = SubscriptionsConfig()
    ingest: IngestConfig = IngestConfig()
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
        host = urlsplit(self.site.base_url).hostname or ""
        if host not in LOCAL_HOSTS:
            for key in ("secret_key", "admin_token"):
                secret: SecretStr = getattr(self.security, key)
                if secret.get_secret_value() == DEFAULT_SECRET or len(secret.get_secret_value()) < 16:
                    raise ValueError(
                        f"security.{key}: set a secret of 16 characters or more "
                        f"before serving {self.site.base_url}"
                    )
        return self

    @property
    def source(self) -> Path | None:
        """The file the settings were read from, or None for built-in defaults."""
        return self._source

    def newsletter(self, newsletter_id: str) -> NewsletterConfig:
        for newsletter in self.newsletters:
            if newsletter.id == newsletter_id:
                return newsletter
        raise KeyError(newsletter_id)

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


def find_config_file(explicit: Path | None) -> Path | None:
    """--config, else $NEWSLETTER_CONFIG, else ./newsletter.toml if present, else None."""
    if explicit is not None:
        return explicit
    if os.environ.get("NEWSLETTER_CONFIG"):
        return Path(os.environ["NEWSLETTER_CONFIG"])
    if DEFAULT_CONFIG_FILE.is_file():
        return DEFAULT_CONFIG_FILE
    return None


def load_settings(
    path: Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read, merge and validate the configuration once; raise ConfigError on any problem.

    `overrides` (nested like the file) beat the file; the environment beats both.
    """
    env = dict(os.environ)
    source = find_config_file(path)
    data = _read_toml(source) if source is not None else {}
    if overrides:
        data = _merge(data, overrides)
    _reject_unknown_env_sections(env)
    where = str(source) if source is not None else "built-in defaults"
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where, env)) from None
    settings._source = source
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"config file unreadable: {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _reject_unknown_env_sections(env: dict[str, str]) -> None:
    sections = set(Settings.model_fields)
    for name in env:
        if name.startswith(ENV_PREFIX) and "__" in name[len(ENV_PREFIX) :]:
            section = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
            if section not in sections:
                raise ConfigError(f"config error: {name}: unknown section {section!r}")


def _describe(exc: ValidationError, where: str, env: dict[str, str]) -> str:
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    # Validators spanning several keys name the key at the start of their message.
    named = re.match(r"^([a-z_]+(?:\.[a-z_]+)*): (.*)$", message, re.DOTALL)
    if named and error["type"] == "value_error":
        location += named.group(1).split(".")
        message = named.group(2)
    key = re.sub(r"\.(\d+)", r"[\1]", ".".join(location)) or "(top level)"
    env_name = ENV_PREFIX + "__".join(part.upper() for part in location[:2])
    origin = f"environment {env_name}" if env_name in env else where
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    return f"config error: {key} ({origin}): {message.splitlines()[0]}"


def mask_secrets(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data with every secret replaced by ****."""
    data = settings.model_dump(mode="json", by_alias=True)
    for section, key in (
        ("smtp", "password"),
        ("security", "secret_key"),
        ("security", "admin_token"),
    ):
        if data[section][key]:
            data[section][key] = "****"
    data["database"]["url"] = _mask_url_password(data["database"]["url"])
    return data


def _mask_url_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1****@", url)
