"""Email addresses as readers type them: validated, normalised, keyed and hashed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, ValidatedEmail, validate_email

from newsletter.errors import InvalidInput

# Longer than any deliverable address (RFC 5321 caps a path at 256 octets); checked
# before email-validator so a megabyte of junk costs nothing.
MAX_ADDRESS_CHARS = 320
# C0 and C1 controls (CR, LF and NUL among them), and U+FFFD, which is what a body in
# another encoding turns into once decoded as UTF-8.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffd]")
# A host name of one label, or under a name reserved for local use, that email-validator
# refuses as not deliverable on the internet.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LOCAL_DOMAIN = re.compile(
    rf"{_LABEL}|(?:{_LABEL}\.)*(?:localhost|local|test|internal|lan|home\.arpa|localdomain)", re.IGNORECASE
)


@dataclass(frozen=True)
class Address:
    email: str  # normalised: the domain IDNA-normalised, the local part's case kept
    key: str  # lower-cased, unique per subscriber

    @property
    def hash(self) -> str:
        return email_hash(self.key)


def email_hash(key: str) -> str:
    """What a suppression entry keeps of an erased address."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def clean_text(field: str, value: object, *, max_chars: int) -> str:
    """A single-line string from a user, or InvalidInput naming the field."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if len(value) > max_chars:
        raise InvalidInput(field, f"must be at most {max_chars} characters")
    if _FORBIDDEN.search(value):
        raise InvalidInput(field, "must not contain line breaks, control characters or invalid UTF-8")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid Unicode text") from None
    return value


def normalise_address(
    value: object, *, field: str = "email", check_deliverability: bool = False, local_domains: bool = False
) -> Address:
    """One address, validated with email-validator (no DNS look-up unless asked).

    `check_deliverability=True` queries DNS and blocks: callers on the event loop run it in a thread.
    `local_domains=True` (subscriptions.allow_local_domains) also takes a domain of one label or
    a local one (`user@localhost`, `user@mailhost`, `user@box.test`), for a test or intranet setup.
    """
    text = clean_text(field, value, max_chars=MAX_ADDRESS_CHARS).strip()
    if not text:
        raise InvalidInput(field, "an email address is required")
    local, _, domain = text.rpartition("@")
    if local_domains and _LOCAL_DOMAIN.fullmatch(domain):
        # The local part is checked as any other; the domain by the hostname rules alone.
        email = f"{_validated(f'{local}@example.com', field, False).local_part}@{domain.lower()}"
        return Address(email, email.lower())
    validated = _validated(text, field, check_deliverability)
    return Address(validated.normalized, validated.normalized.lower())


def _validated(text: str, field: str, check_deliverability: bool) -> ValidatedEmail:
    try:
        return validate_email(text, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidInput(field, f"not a valid email address: {exc}") from None
