"""`[bounces]`: where returned mail and complaints come in, and what they do to a reader."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, SecretStr, field_validator, model_validator

from newsletter.config.sections import Section

# A VERP local part is `local_part+token`: dot-atom characters only, and no "+" of its own.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
# Amazon SNS signs with a certificate it serves from its own hosts, and nowhere else.
SNS_CERTIFICATE_URL = (
    r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/SimpleNotificationService-[0-9a-f]+\.pem$"
)


class MailboxConfig(Section):
    """A mailbox the relay's bounces and feedback-loop reports land in, read over IMAP or POP3."""

    protocol: Literal["imap", "pop3"] = "imap"
    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)  # None: 993/995 over TLS, 143/110 otherwise
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = ""
    password: SecretStr = SecretStr("")
    validate_certs: bool = True
    ca_file: Path | None = None
    folder: str = "INBOX"  # IMAP only: POP3 has one mailbox
    # IMAP only: a handled message is moved here; "" deletes it (POP3 always deletes).
    processed_folder: str = ""
    poll_seconds: float = Field(default=60, gt=0, le=86_400)
    idle: bool = True  # IMAP IDLE between polls when the server offers it
    max_message_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    batch_size: int = Field(default=100, ge=1, le=10_000)

    @field_validator("folder", "processed_folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        # Sent as an IMAP quoted string: printable ASCII (modified UTF-7 names are not written for you).
        if any(not " " <= c <= "~" for c in value):
            raise ValueError("an IMAP folder name of printable ASCII characters")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> MailboxConfig:
        if self.enabled and not self.username:
            raise ValueError("username: the mailbox's login is needed with a host")
        if self.protocol == "pop3" and (self.processed_folder or self.folder != "INBOX"):
            raise ValueError("folder, processed_folder: POP3 reads one mailbox and deletes what it handled")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        tls = self.security == "tls"
        return {"imap": 993 if tls else 143, "pop3": 995 if tls else 110}[self.protocol]


class WebhooksConfig(Section):
    """Providers that report bounces and complaints over HTTP, each with its own credentials;
    a provider left unconfigured answers 404."""

    # Amazon SES through SNS: the topics whose notifications are accepted.
    ses_topic_arns: list[str] = []
    sns_certificate_url: str = SNS_CERTIFICATE_URL  # a pattern the SigningCertURL must match
    sns_ca_file: Path | None = None  # trust for fetching the certificate (tests); None: the system's
    # Postmark: HTTP Basic credentials set on the webhook.
    postmark_username: str = ""
    postmark_password: SecretStr = SecretStr("")
    # SendGrid's signed event webhook: the verification key it shows (base64 DER, ECDSA P-256).
    sendgrid_public_key: str = ""
    # Mailgun: the HTTP webhook signing key.
    mailgun_signing_key: SecretStr = SecretStr("")
    # A signed request older (or further in the future) than this is a replay: refused.
    max_age_seconds: int = Field(default=900, ge=30, le=86_400)

    @field_validator("sns_certificate_url")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("ses_topic_arns")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not arn.startswith("arn:") or arn.count(":") < 5:
                raise ValueError(f"not an SNS topic ARN: {arn!r}")
        return value

    @field_validator("sendgrid_public_key")
    @classmethod
    def _sendgrid_key(cls, value: str) -> str:
        value = "".join(value.split())
        if value:
            _sendgrid_key(value)
        return value

    @model_validator(mode="after")
    def _postmark_pair(self) -> WebhooksConfig:
        if bool(self.postmark_username) != bool(self.postmark_password.get_secret_value()):
            raise ValueError("postmark_username and postmark_password: set both, or neither")
        return self

    @property
    def ses_enabled(self) -> bool:
        return bool(self.ses_topic_arns)

    @property
    def postmark_enabled(self) -> bool:
        return bool(self.postmark_username)

    @property
    def sendgrid_enabled(self) -> bool:
        return bool(self.sendgrid_public_key)

    @property
    def mailgun_enabled(self) -> bool:
        return bool(self.mailgun_signing_key.get_secret_value())

    @property
    def enabled(self) -> bool:
        """Some provider is configured."""
        return self.ses_enabled or self.postmark_enabled or self.sendgrid_enabled or self.mailgun_enabled

    def sendgrid_verification_key(self) -> ec.EllipticCurvePublicKey:
        return _sendgrid_key(self.sendgrid_public_key)


def _sendgrid_key(value: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key as its settings page shows it: base64 DER, ECDSA P-256."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise ValueError("sendgrid_public_key: not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("sendgrid_public_key: not an ECDSA P-256 key")
    return key


class BouncesConfig(Section):
    # The bounce domain (its MX points at `newsletter bounces serve`); set, it turns VERP on:
    # each message's envelope sender is local_part+<signed token>@domain.
    domain: str = ""
    local_part: str = "bounces"
    # The receiver (`newsletter bounces serve`, and part of `serve` with `receive = true`).
    receive: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=0, le=65535)
    max_message_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    max_messages_per_minute: int = Field(default=1200, ge=1)  # per client address
    max_recipients: int = Field(default=50, ge=1, le=1000)
    # Policy. A hard bounce counts towards delivery.bounce_threshold at once (1: bounced at once);
    # soft bounces mark a reader bounced at `soft_bounce_limit` within the window, and older
    # ones stop counting.
    soft_bounce_limit: int = Field(default=3, ge=1, le=1000)
    soft_bounce_window_days: int = Field(default=15, ge=1, le=3650)
    mailbox: MailboxConfig = MailboxConfig()
    webhooks: WebhooksConfig = WebhooksConfig()

    @field_validator("local_part")
    @classmethod
    def _local_part(cls, value: str) -> str:
        if not _LOCAL_PART.fullmatch(value) or len(value) > 30:
            raise ValueError("must be a plain local part of at most 30 characters, without '+'")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value and not _DOMAIN.fullmatch(value):
            raise ValueError(f"not a domain name: {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _receiver_needs_domain(self) -> BouncesConfig:
        if self.receive and not self.domain:
            raise ValueError("receive: the receiver needs bounces.domain (the VERP addresses it accepts)")
        return self

    @property
    def verp(self) -> bool:
        return bool(self.domain)
