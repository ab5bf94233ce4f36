"""Addresses: normalised with email-validator, keyed case-insensitively, refused with the field named."""

from __future__ import annotations

import pytest

from newsletter.errors import InvalidInput
from newsletter.subscriptions.addresses import email_hash, normalise_address


@pytest.mark.parametrize(
    ("given", "email", "key"),
    [
        ("Bob@Example.COM", "Bob@example.com", "bob@example.com"),
        ("bob@BÜCHER.de", "bob@bücher.de", "bob@bücher.de"),
        ("bob@xn--bcher-kva.de", "bob@bücher.de", "bob@bücher.de"),
        ("用户@例子.广告", "用户@例子.广告", "用户@例子.广告"),
        (" bob@example.com\t", None, None),
    ],
)
def test_normalised_forms(given: str, email: str | None, key: str | None) -> None:
    if email is None:
        with pytest.raises(InvalidInput):
            normalise_address(given)
        return
    address = normalise_address(given)
    assert (address.email, address.key) == (email, key)
    assert key is not None and address.hash == email_hash(key) and len(address.hash) == 64


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "plain",
        "a@b",
        "a@@example.com",
        "a@example.com\r\n",
        "a\x00@example.com",
        "x" * 400,
        None,
        12,
    ],
)
def test_refused_with_the_field_named(given: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_address(given, field="items[3].email")
    assert caught.value.field == "items[3].email"


def test_the_hash_is_of_the_lower_cased_address() -> None:
    assert normalise_address("MiXed@Example.com").hash == normalise_address("mixed@example.com").hash
