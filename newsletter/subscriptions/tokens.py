"""Signed, purpose-scoped link tokens: a confirm token cannot unsubscribe, and so on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, SignatureExpired, Signer, TimestampSigner

from newsletter.errors import InvalidToken

# "<subscriber id>" or "<subscriber id>.<newsletter id>"
_PAYLOAD = re.compile(r"^(\d{1,18})(?:\.([a-z0-9][a-z0-9_-]{0,39}))?$")


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class TokenExpired(InvalidToken):
    """A genuine confirm token, older than security.confirm_max_age_days."""


class LinkNoLongerValid(InvalidToken):
    """A genuine token whose subscription has since changed (unsubscribed, erased, superseded)."""


@dataclass(frozen=True)
class TokenData:
    subscriber_id: int
    newsletter_id: str | None
    # When a confirm token was signed (whole seconds); None for tokens that never expire.
    issued_at: datetime | None = None


class _KeyOnceSigner(Signer):
    """itsdangerous' signer, deriving its key once instead of on every signature."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key = super().derive_key()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._key if secret_key is None else super().derive_key(secret_key)


class _KeyOnceTimestampSigner(TimestampSigner, _KeyOnceSigner):
    pass


class TokenSigner:
    """Confirm tokens carry a timestamp and expire; unsubscribe and preferences tokens never do.

    Each purpose has its own salt, hence its own key: a token signed for one purpose
    fails for every other. Payloads are compact text (no JSON, no compression), so a
    token costs a few microseconds, which matters with two per recipient per edition.
    """

    def __init__(self, secret_key: str, confirm_max_age_seconds: int) -> None:
        self._confirm = _KeyOnceTimestampSigner(secret_key, salt="newsletter.confirm")
        self._lasting: dict[Purpose, Signer] = {
            Purpose.UNSUBSCRIBE: _KeyOnceSigner(secret_key, salt="newsletter.unsubscribe"),
            Purpose.PREFERENCES: _KeyOnceSigner(secret_key, salt="newsletter.preferences"),
        }
        self._confirm_max_age = confirm_max_age_seconds

    def sign(self, purpose: Purpose, subscriber_id: int, newsletter_id: str | None = None) -> str:
        payload = f"{subscriber_id}.{newsletter_id}" if newsletter_id else str(subscriber_id)
        signer = self._confirm if purpose is Purpose.CONFIRM else self._lasting[purpose]
        return signer.sign(payload).decode("ascii")

    def verify(self, purpose: Purpose, token: str) -> TokenData:
        """What the token carries, or InvalidToken (forged, truncated, expired, other purpose)."""
        if len(token) > 256 or not token.isascii():
            raise InvalidToken("malformed token")
        issued_at: datetime | None = None
        try:
            if purpose is Purpose.CONFIRM:
                payload, issued_at = self._confirm.unsign(
                    token, max_age=self._confirm_max_age, return_timestamp=True
                )
            else:
                payload = self._lasting[purpose].unsign(token)
        except SignatureExpired:
            raise TokenExpired("SignatureExpired") from None
        except BadData as exc:
            raise InvalidToken(type(exc).__name__) from None
        match = _PAYLOAD.match(payload.decode("ascii", "replace"))
        if match is None:
            raise InvalidToken("malformed payload")
        return TokenData(int(match.group(1)), match.group(2), issued_at)
