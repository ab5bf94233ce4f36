"""Link tokens: bound to a subscriber and one purpose; confirm tokens expire, the others never."""

from __future__ import annotations

import time

import pytest

from newsletter.errors import InvalidToken
from newsletter.subscriptions.tokens import Purpose, TokenExpired, TokenSigner
from tests.conftest import SECRET_KEY
from tests.subscriptions.helpers import confirm_token_signed_at

SIGNER = TokenSigner(SECRET_KEY, 7 * 86400)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_works_for_its_purpose_only(purpose: Purpose) -> None:
    token = SIGNER.sign(purpose, 42, "daily")
    data = SIGNER.verify(purpose, token)
    assert (data.subscriber_id, data.newsletter_id) == (42, "daily")
    for other in Purpose:
        if other is not purpose:
            with pytest.raises(InvalidToken):
                SIGNER.verify(other, token)


def test_confirm_tokens_carry_when_they_were_signed_and_expire() -> None:
    data = SIGNER.verify(Purpose.CONFIRM, SIGNER.sign(Purpose.CONFIRM, 7))
    assert data.issued_at is not None and abs(data.issued_at.timestamp() - time.time()) < 5
    with pytest.raises(TokenExpired):
        SIGNER.verify(Purpose.CONFIRM, confirm_token_signed_at(7, seconds_ago=7 * 86400 + 60))
    assert (
        SIGNER.verify(Purpose.CONFIRM, confirm_token_signed_at(7, seconds_ago=6 * 86400)).subscriber_id == 7
    )


def test_unsubscribe_and_preferences_tokens_do_not_expire() -> None:
    for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES):
        assert SIGNER.verify(purpose, SIGNER.sign(purpose, 1)).issued_at is None


def test_another_secret_key_makes_every_token_invalid() -> None:
    other = TokenSigner("another-secret-key-0123456789", 86400)
    for purpose in Purpose:
        with pytest.raises(InvalidToken):
            SIGNER.verify(purpose, other.sign(purpose, 1))
