"""Signed, purpose-scoped link tokens: a confirm token cannot unsubscribe, and so on.

A token names a subscriber by id *and* by the subscriber's own nonce (`subscribers.token_nonce`,
random, never reused), so a link can never act for a later subscriber who happens to get the
same id, and erasure (which draws a new nonce) kills every link of the erased reader.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, SignatureExpired, Signer, TimestampSigner
from itsdangerous.encoding import base64_encode, int_to_bytes

from newsletter.errors import InvalidToken
from newsletter.personal.mac import KeyedMac

_NEWSLETTER = r"[a-z0-9][a-z0-9_-]{0,39}"
# "<subscriber id>.<nonce>[.<newsletter id>]": the nonce's capitals and digits cannot be a
# newsletter id (lower case), so the legacy form below never reads as this one.
_PAYLOAD = re.compile(rf"^(\d{{1,18}})\.([0-9A-F]{{12}})(?:\.({_NEWSLETTER}))?$")
# Tokens signed before subscribers had a nonce: "<subscriber id>[.<newsletter id>]".
_LEGACY_PAYLOAD = re.compile(rf"^(\d{{1,18}})(?:\.({_NEWSLETTER}))?$")
NONCE_PATTERN = re.compile(r"[0-9A-F]{12}")


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class TokenExpired(InvalidToken):
    """A genuine confirm or preferences token, older than the purpose allows."""

    def __init__(self, purpose: Purpose) -> None:
        super().__init__(f"{purpose} link expired")
        self.purpose = purpose


class LinkNoLongerValid(InvalidToken):
    """A genuine token whose subscription has since changed (unsubscribed, erased, superseded)."""


@dataclass(frozen=True)
class LinkOwner:
    """Whom a link acts for: a subscriber's id and its token nonce."""

    subscriber_id: int
    nonce: str


@dataclass(frozen=True)
class TokenData:
    subscriber_id: int
    # The subscriber's nonce; "" for a token signed before nonces existed (legacy).
    nonce: str
    newsletter_id: str | None
    # When a confirm or preferences token was signed (whole seconds); None for unsubscribe.
    issued_at: datetime | None = None

    @property
    def legacy(self) -> bool:
        return not self.nonce


class _KeyOnceSigner(Signer):
    """itsdangerous' signer, deriving its key once instead of on every signature."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key = super().derive_key()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._key if secret_key is None else super().derive_key(secret_key)


class _KeyOnceTimestampSigner(TimestampSigner, _KeyOnceSigner):
    pass


class _Signing:
    """What `signer.sign` returns, in one C call (`hmac.digest`) instead of itsdangerous' layers
    of Python: two tokens per recipient per edition. Checked against itsdangerous itself when
    made, so a change of its defaults (digest, key derivation, separator) cannot go unnoticed;
    tokens are still verified by itsdangerous."""

    def __init__(self, signer: _KeyOnceSigner, *, timed: bool) -> None:
        self._mac = KeyedMac(signer.derive_key(), "sha1")
        self._timed = timed
        self._second = -1
        self._stamp = b""  # ".<timestamp>" for the second in `_second`
        probe = b"1.000000000000"
        if signer.sep != b"." or signer.get_signature(probe) != self._signature(probe):
            raise RuntimeError("itsdangerous signs differently than TokenSigner expects")

    def sign(self, payload: bytes) -> bytes:
        if self._timed:
            now = int(time.time())
            if now != self._second:
                self._second, self._stamp = now, b"." + base64_encode(int_to_bytes(now))
            payload += self._stamp
        return payload + b"." + self._signature(payload)

    def _signature(self, value: bytes) -> bytes:
        return base64.urlsafe_b64encode(self._mac.digest(value)).rstrip(b"=")


class TokenSigner:
    """Confirm and preferences tokens carry a timestamp and expire; unsubscribe tokens never do,
    so one-click unsubscribe keeps working from a digest of any age.

    Each purpose has its own salt, hence its own key: a token signed for one purpose fails for
    every other. Payloads are compact text (no JSON, no compression), so a token costs a few
    microseconds, which matters with two per recipient per edition.
    """

    def __init__(self, secret_key: str, max_age_seconds: dict[Purpose, int]) -> None:
        confirm = _KeyOnceTimestampSigner(secret_key, salt="newsletter.confirm")
        preferences = _KeyOnceTimestampSigner(secret_key, salt="newsletter.preferences")
        unsubscribe = _KeyOnceSigner(secret_key, salt="newsletter.unsubscribe")
        self._timed: dict[Purpose, TimestampSigner] = {
            Purpose.CONFIRM: confirm,
            Purpose.PREFERENCES: preferences,
        }
        self._lasting: dict[Purpose, Signer] = {
            Purpose.UNSUBSCRIBE: unsubscribe,
            # Preferences tokens before they expired; only to tell such a link apart as expired.
            Purpose.PREFERENCES: _KeyOnceSigner(secret_key, salt="newsletter.preferences"),
        }
        self._max_age = max_age_seconds
        self._signing = {
            Purpose.CONFIRM: _Signing(confirm, timed=True),
            Purpose.PREFERENCES: _Signing(preferences, timed=True),
            Purpose.UNSUBSCRIBE: _Signing(unsubscribe, timed=False),
        }

    def sign(self, purpose: Purpose, owner: LinkOwner, newsletter_id: str | None = None) -> str:
        if not NONCE_PATTERN.fullmatch(owner.nonce):
            raise ValueError(f"bad token nonce for subscriber {owner.subscriber_id}")
        payload = f"{owner.subscriber_id}.{owner.nonce}"
        if newsletter_id:
            payload += f".{newsletter_id}"
        return self._signing[purpose].sign(payload.encode("utf-8")).decode("ascii")

    def verify(self, purpose: Purpose, token: str) -> TokenData:
        """What the token carries, or InvalidToken (forged, truncated, expired, other purpose).
        Whether it still belongs to the subscriber (nonce, status) is for the caller to check."""
        if len(token) > 256 or not token.isascii():
            raise InvalidToken("malformed token")
        issued_at: datetime | None = None
        try:
            if purpose in self._timed:
                payload, issued_at = self._timed[purpose].unsign(
                    token, max_age=self._max_age[purpose], return_timestamp=True
                )
            else:
                payload = self._lasting[purpose].unsign(token)
        except SignatureExpired:
            raise TokenExpired(purpose) from None
        except BadData as exc:
            if purpose is Purpose.PREFERENCES and self._is_untimed_preferences(token):
                raise TokenExpired(purpose) from None
            raise InvalidToken(type(exc).__name__) from None
        return _parse(payload.decode("ascii", "replace"), purpose, issued_at)

    def _is_untimed_preferences(self, token: str) -> bool:
        try:
            self._lasting[Purpose.PREFERENCES].unsign(token)
        except BadData:
            return False
        return True


def _parse(payload: str, purpose: Purpose, issued_at: datetime | None) -> TokenData:
    match = _PAYLOAD.match(payload)
    if match is not None:
        return TokenData(int(match.group(1)), match.group(2), match.group(3), issued_at)
    legacy = _LEGACY_PAYLOAD.match(payload)
    if legacy is None:
        raise InvalidToken("malformed payload")
    if purpose is Purpose.PREFERENCES:
        raise TokenExpired(purpose)
    return TokenData(int(legacy.group(1)), "", legacy.group(2), issued_at)


def owns(data: TokenData, *, nonce: str, legacy_links: bool) -> bool:
    """Whether a verified token belongs to the subscriber with this nonce: the nonce matches,
    or it is a legacy token and the subscriber predates nonces."""
    return data.nonce == nonce if data.nonce else legacy_links
