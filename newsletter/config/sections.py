"""The configuration's sections: typed, validated, frozen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from apscheduler.triggers.cron import CronTrigger
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_SECRET = "change-me"
DEFAULT_RELAY = "default"


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL):
        raise ValueError(f"not a usable URL: {value!r}") from None
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
    # A request must send its headers, then its body, within these; else 408 and closed.
    header_timeout_seconds: float = Field(default=10, gt=0, le=600)
    body_timeout_seconds: float = Field(default=30, gt=0, le=3600)
    # Connections open at once; more are answered 503 and closed. Start raises the open-file
    # limit to make room for them, or lowers this (with a warning) where it cannot.
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    # GET /metrics: "token" needs `Authorization: Bearer` with security.metrics_token (or the
    # admin token); "public" answers anyone (only where nobody else can reach it); "off": 404.
    metrics: Literal["token", "public", "off"] = "token"
    # > 0: also serve /metrics, without a token, on metrics_host:metrics_port (loopback by
    # default), in every process (serve, worker, scheduler) so each can be scraped.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # /api/docs and /api/openapi.json answer without the admin token.
    public_api_docs: bool = False
    # The parts `newsletter serve` runs in its one process.
    web: bool = True
    scheduler: bool = True
    worker: bool = True


RelayName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Security = Literal["none", "starttls", "tls"]


class RelayConfig(Section):
    """One SMTP relay of several (`[[smtp.relays]]`); what it leaves out comes from [smtp]."""

    name: RelayName
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    username: str | None = None
    password: SecretStr | None = None
    validate_certs: bool | None = None
    ca_file: Path | None = None
    concurrency: int | None = Field(default=None, ge=1, le=500)
    rate_limit: float | None = Field(default=None, ge=0)
    # Its share of the work beside the others: a relay of weight 2 takes twice as much.
    weight: float = Field(default=1, gt=0, le=1000)


class RelaySettings(NamedTuple):
    name: str
    key: str  # where it is configured, for messages: "smtp" or "smtp.relays[1]"
    config: SmtpConfig  # the whole SMTP configuration it sends with
    weight: float


class SmtpConfig(Section):
    host: str = "localhost"
    port: int = Field(default=1025, ge=1, le=65535)
    security: Security = "none"
    username: str = ""
    password: SecretStr = SecretStr("")
    validate_certs: bool = True
    # A CA certificate (PEM) to trust for the server's certificate, as for a private CA.
    ca_file: Path | None = None
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
    # Several relays; when none is listed, the host above is the one relay ("default").
    relays: list[RelayConfig] = []
    # The relays confirmation emails go through; [] = any.
    confirmation_relays: list[RelayName] = []

    @model_validator(mode="after")
    def _relays_named_once(self) -> SmtpConfig:
        names = [relay.name for relay in self.relays]
        if len(set(names)) != len(names):
            raise ValueError("relays: two relays share a name")
        unknown = set(self.confirmation_relays) - set(names)
        if unknown:
            raise ValueError(f"confirmation_relays: no relay named {', '.join(sorted(unknown))}")
        return self

    def relay_settings(self) -> list[RelaySettings]:
        """Each relay as a whole SMTP configuration of its own: what the relay sets, and [smtp]
        for the rest. Without relays, [smtp] is the one relay."""
        if not self.relays:
            return [RelaySettings(DEFAULT_RELAY, "smtp", self, 1.0)]
        shared: dict[str, object] = {"relays": [], "confirmation_relays": []}
        return [
            RelaySettings(
                relay.name,
                f"smtp.relays[{index}]",
                self.model_copy(
                    update={**relay.model_dump(exclude={"name", "weight"}, exclude_none=True), **shared}
                ),
                relay.weight,
            )
            for index, relay in enumerate(self.relays)
        ]

    @property
    def sender_domain(self) -> str:
        """The From address's domain in ASCII: it names Message-IDs and List-Ids."""
        return self.from_address.rsplit("@", 1)[-1].encode("idna").decode("ascii").lower()


DkimAlgorithm = Literal["rsa-sha256", "ed25519-sha256"]


class DkimKeySettings(NamedTuple):
    """One signing key as configured: its algorithm, selector, file and the keys naming them."""

    algorithm: DkimAlgorithm
    selector: str
    private_key_file: Path
    setting: str  # "dkim.private_key_file" or "dkim.ed25519_private_key_file"


class DkimConfig(Section):
    selector: str = ""
    domain: str = ""
    # The RSA key (rsa-sha256) and its selector.
    private_key_file: Path | None = None
    # One signature per algorithm: ["rsa-sha256", "ed25519-sha256"] signs twice, as large
    # senders do while receivers move to Ed25519 (RFC 8463).
    algorithms: list[DkimAlgorithm] = Field(default=["rsa-sha256"], min_length=1, max_length=2)
    # The Ed25519 key (ed25519-sha256) and its selector.
    ed25519_selector: str = ""
    ed25519_private_key_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> DkimConfig:
        if len(set(self.algorithms)) != len(self.algorithms):
            raise ValueError("algorithms: each at most once")
        if not self.enabled:
            if self.selector or self.domain or self.ed25519_selector:
                raise ValueError("selector, domain and private_key_file go together")
            return self
        if not self.domain:
            raise ValueError("domain: needed to sign (the d= of the signature)")
        pairs = {
            "rsa-sha256": ("selector", self.selector, "private_key_file", self.private_key_file),
            "ed25519-sha256": (
                "ed25519_selector",
                self.ed25519_selector,
                "ed25519_private_key_file",
                self.ed25519_private_key_file,
            ),
        }
        for algorithm, (selector_key, selector, file_key, path) in pairs.items():
            listed = algorithm in self.algorithms
            if listed and not (selector and path is not None):
                raise ValueError(
                    f"{selector_key} and {file_key} are needed for {algorithm} (dkim.algorithms)"
                )
            if not listed and (selector or path is not None):
                raise ValueError(f"{file_key}: set, but dkim.algorithms does not list {algorithm}")
            if path is not None and not path.is_file():
                raise ValueError(f"{file_key}: not found: {path}")
        return self

    @property
    def enabled(self) -> bool:
        return self.private_key_file is not None or self.ed25519_private_key_file is not None

    def key_settings(self) -> list[DkimKeySettings]:
        """The configured keys, in the order of `algorithms`."""
        found: list[DkimKeySettings] = []
        for algorithm in self.algorithms if self.enabled else []:
            if algorithm == "rsa-sha256" and self.private_key_file is not None:
                found.append(
                    DkimKeySettings(algorithm, self.selector, self.private_key_file, "dkim.private_key_file")
                )
            elif algorithm == "ed25519-sha256" and self.ed25519_private_key_file is not None:
                found.append(
                    DkimKeySettings(
                        algorithm,
                        self.ed25519_selector,
                        self.ed25519_private_key_file,
                        "dkim.ed25519_private_key_file",
                    )
                )
        return found


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
    # A token that can only read /metrics (for Prometheus' bearer_token), instead of the admin one.
    metrics_token: SecretStr = SecretStr("")
    confirm_max_age_days: int = Field(default=7, ge=1)
    # Links to a reader's preferences page expire; every digest carries a fresh one.
    # (Unsubscribe links never do: one-click unsubscribe must work from a digest of any age.)
    preferences_max_age_days: int = Field(default=90, ge=1, le=3650)


class SubscriptionsConfig(Section):
    double_opt_in: bool = True
    rate_limit_per_minute: int = Field(default=10, ge=1)
    confirmation_resend_minutes: int = Field(default=10, ge=0)
    pending_expiry_days: int = Field(default=7, ge=1)
    # Look up the domain's MX records at signup (needs DNS).
    check_deliverability: bool = False
    # Accept addresses at a domain of one label or a local one (user@localhost, user@box.test):
    # for test and intranet setups; off, they are refused as not deliverable on the internet.
    allow_local_domains: bool = False


class IngestConfig(Section):
    timeout: float = Field(default=20, gt=0)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    user_agent: str = "newsletter/0.1 (+https://github.com/newsletter; feed digest)"
    max_title_chars: int = Field(default=200, ge=20)
    max_summary_chars: int = Field(default=600, ge=40)


class ArticlesConfig(Section):
    # Entries stored from one fetch of one feed, newest first; the rest are skipped and counted.
    max_entries_per_feed: int = Field(default=500, ge=1, le=100_000)
    # Articles published longer ago than this are deleted (0: kept for ever).
    retention_days: int = Field(default=90, ge=0, le=36_500)


class TrackingConfig(Section):
    # Click events (and per-reader opens) older than this are deleted; counts of old editions go
    # with them.
    retention_days: int = Field(default=180, ge=1, le=36_500)
    # A click this soon after its message went out is a link scanner's, not a reader's (counted
    # apart, with its timing kept so the window can be tuned).
    scanner_seconds: int = Field(default=60, ge=0, le=86_400)
    # Clicks counted per client address a minute; more are redirected but counted apart.
    max_clicks_per_minute: int = Field(default=30, ge=1, le=100_000)


class ConsoleConfig(Section):
    # The operator console under /admin (accounts from `newsletter admins add`); off: 404.
    enabled: bool = True
    # A console session ends after this long without a request, and in any case after max_hours.
    idle_minutes: int = Field(default=60, ge=1, le=10_080)
    max_hours: int = Field(default=12, ge=1, le=720)
    # Failed logins allowed per account, and per client address, in 15 minutes; then refused.
    login_attempts: int = Field(default=5, ge=1, le=1_000)
    # The largest CSV file the console's import takes (the admin API takes server.max_api_body_bytes).
    max_import_bytes: int = Field(default=50 * 1024 * 1024, ge=1024, le=1024**3)


class FeedConfig(Section):
    url: str
    section: SectionName | None = None
    name: str | None = None
    poll_minutes: int = Field(default=15, ge=1)
    # Fetch this feed (and its redirects) from private and loopback addresses too: for a feed
    # on an intranet CMS. Others are fetched from public addresses only.
    allow_private: bool = False

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
    # The relays (smtp.relays[].name) its editions go through; [] = any.
    relays: list[RelayName] = []
    # Its editions on the web: "public" (listed, indexable, in the archive feed and sitemap),
    # "private" (only through the link in each email, signed per edition) or "off".
    archive: Literal["public", "private", "off"] = "public"
    # What readers click: "off" (links go straight to the articles), "aggregate" (clicks counted
    # per article and edition, nobody's identity kept) or "per_reader" (also whose; opens too).
    tracking: Literal["off", "aggregate", "per_reader"] = "off"

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
