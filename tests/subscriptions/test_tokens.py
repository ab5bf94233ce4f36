"""Link tokens: bound to a subscriber's id and nonce and to one purpose; confirm and preferences
tokens expire, unsubscribe tokens never do; tokens signed before nonces existed still read."""

from __future__ import annotations

import time

import pytest

from newsletter.errors import InvalidToken
from newsletter.personal.tokens import LinkOwner, Purpose, TokenExpired, TokenSigner, owns
from tests.conftest import SECRET_KEY
from tests.subscriptions.helpers import confirm_token_signed_at, signed_at

DAY = 86400
SIGNER = TokenSigner(SECRET_KEY, {Purpose.CONFIRM: 7 * DAY, Purpose.PREFERENCES: 90 * DAY})
READER = LinkOwner(42, "0A1B2C3D4E5F")


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_works_for_its_purpose_only(purpose: Purpose) -> None:
    token = SIGNER.sign(purpose, READER, "daily")
    data = SIGNER.verify(purpose, token)
    assert (data.subscriber_id, data.nonce, data.newsletter_id) == (42, "0A1B2C3D4E5F", "daily")
    assert not data.legacy
    for other in Purpose:
        if other is not purpose:
            with pytest.raises(InvalidToken):
                SIGNER.verify(other, token)


def test_a_token_belongs_only_to_the_subscriber_with_its_nonce() -> None:
    data = SIGNER.verify(Purpose.UNSUBSCRIBE, SIGNER.sign(Purpose.UNSUBSCRIBE, READER))
    assert owns(data, nonce=READER.nonce, legacy_links=False)
    # Another subscriber given the same id (or the same one after erasure) has another nonce.
    assert not owns(data, nonce="FFFFFFFFFFFF", legacy_links=True)


def test_confirm_tokens_carry_when_they_were_signed_and_expire() -> None:
    data = SIGNER.verify(Purpose.CONFIRM, SIGNER.sign(Purpose.CONFIRM, READER))
    assert data.issued_at is not None and abs(data.issued_at.timestamp() - time.time()) < 5
    with pytest.raises(TokenExpired):
        SIGNER.verify(Purpose.CONFIRM, confirm_token_signed_at(READER, seconds_ago=7 * DAY + 60))
    assert SIGNER.verify(Purpose.CONFIRM, confirm_token_signed_at(READER, seconds_ago=6 * DAY)).nonce


def test_preferences_tokens_expire_and_unsubscribe_tokens_never_do() -> None:
    payload = f"{READER.subscriber_id}.{READER.nonce}"
    assert SIGNER.verify(Purpose.PREFERENCES, signed_at("preferences", payload, 89 * DAY)).issued_at
    with pytest.raises(TokenExpired) as expired:
        SIGNER.verify(Purpose.PREFERENCES, signed_at("preferences", payload, 91 * DAY))
    assert expired.value.purpose is Purpose.PREFERENCES
    unsubscribe = SIGNER.verify(Purpose.UNSUBSCRIBE, signed_at("unsubscribe", payload, 0, timed=False))
    assert unsubscribe.issued_at is None and unsubscribe.subscriber_id == 42


def test_tokens_signed_before_nonces_existed() -> None:
    """Unsubscribe links in old digests keep working (for subscribers who predate nonces);
    old preferences links, which never expired, now read as expired."""
    legacy = SIGNER.verify(Purpose.UNSUBSCRIBE, signed_at("unsubscribe", "42.daily", 0, timed=False))
    assert (legacy.subscriber_id, legacy.newsletter_id, legacy.legacy) == (42, "daily", True)
    assert owns(legacy, nonce=READER.nonce, legacy_links=True)
    assert not owns(legacy, nonce=READER.nonce, legacy_links=False)
    confirm = SIGNER.verify(Purpose.CONFIRM, signed_at("confirm", "42", 60))
    assert confirm.legacy and confirm.issued_at is not None
    with pytest.raises(TokenExpired):
        SIGNER.verify(Purpose.PREFERENCES, signed_at("preferences", "42", 0, timed=False))


@pytest.mark.parametrize(
    "payload", ["42.0A1B2C3D4E5", "42.0a1b2c3d4e5f.daily", "42..daily", "x.0A1B2C3D4E5F", "42.daily.x"]
)
def test_malformed_payloads_are_refused_even_when_signed(payload: str) -> None:
    with pytest.raises(InvalidToken):
        SIGNER.verify(Purpose.UNSUBSCRIBE, signed_at("unsubscribe", payload, 0, timed=False))


def test_a_nonce_must_look_like_one_to_be_signed() -> None:
    with pytest.raises(ValueError):
        SIGNER.sign(Purpose.UNSUBSCRIBE, LinkOwner(1, "short"))


def test_another_secret_key_makes_every_token_invalid() -> None:
    other = TokenSigner("another-secret-key-0123456789", {Purpose.CONFIRM: DAY, Purpose.PREFERENCES: DAY})
    for purpose in Purpose:
        with pytest.raises(InvalidToken):
            SIGNER.verify(purpose, other.sign(purpose, READER))
