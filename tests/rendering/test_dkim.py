"""DKIM: a signed message verifies with dkimpy's own verifier; tampering breaks it."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.personal.recipients import make_message_id
from newsletter.rendering import DigestRenderer, MessageTemplate, Recipient
from newsletter.rendering.dkim import DkimSigner
from tests.rendering.articles import EDITION_DATE, stories
from tests.rendering.conftest import DIGEST_VALUES, READER, RenderSettings

SENT_AT = datetime(2026, 3, 7, 7, 0, tzinfo=UTC)
SELECTOR = "news2026"
DOMAIN = "londondaily.example"

DnsLookup = Callable[..., bytes | None]


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def dns(key: rsa.RSAPrivateKey) -> DnsLookup:
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def write_key(key: rsa.RSAPrivateKey, path: Path, fmt: serialization.PrivateFormat) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))
    return path


def signed_settings(render_settings: RenderSettings, key_file: Path) -> Settings:
    return render_settings(dkim={"selector": SELECTOR, "domain": DOMAIN, "private_key_file": str(key_file)})


def build(settings: Settings) -> bytes:
    newsletter = settings.newsletters[0]
    rendered = DigestRenderer(settings).render_digest(newsletter, EDITION_DATE, stories())
    template = MessageTemplate.digest(settings, newsletter, rendered, date=SENT_AT)
    message_id = make_message_id(settings, "e", 1, 2)
    return template.build(Recipient(READER, message_id, DIGEST_VALUES)).data


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_signed_message_verifies(
    render_settings: RenderSettings,
    key: rsa.RSAPrivateKey,
    dns: DnsLookup,
    tmp_path: Path,
    fmt: serialization.PrivateFormat,
) -> None:
    settings = signed_settings(render_settings, write_key(key, tmp_path / "dkim.pem", fmt))
    data = build(settings)
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, [])
    assert MessageTemplate.digest(settings, settings.newsletters[0], rendered, date=SENT_AT).signs
    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dns)
    signature = data.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom: ", 1)[0].replace(b"\r\n", b"")
    signed = re.search(rb"h=([^;]+);", signature)
    assert signed is not None
    names = {name.strip() for name in signed.group(1).split(b":")}
    assert {
        b"from",
        b"subject",
        b"date",
        b"message-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
    } <= names
    assert b"d=londondaily.example" in signature and b"s=news2026" in signature
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_tampering_breaks_the_signature(
    render_settings: RenderSettings, key: rsa.RSAPrivateKey, dns: DnsLookup, tmp_path: Path
) -> None:
    data = build(
        signed_settings(
            render_settings, write_key(key, tmp_path / "k.pem", serialization.PrivateFormat.PKCS8)
        )
    )
    swapped = data.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing"
    )
    assert not dkim.verify(swapped, dnsfunc=dns)
    body_changed = data.replace(b"Read more", b"Read less", 1)
    assert not dkim.verify(body_changed, dnsfunc=dns)


def test_unsigned_without_dkim_settings(render_settings: RenderSettings) -> None:
    settings = render_settings()
    assert b"DKIM-Signature" not in build(settings)
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, [])
    assert not MessageTemplate.digest(settings, settings.newsletters[0], rendered, date=SENT_AT).signs


def test_a_file_that_is_not_a_key_is_a_config_error(render_settings: RenderSettings, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    settings = signed_settings(render_settings, bogus)
    with pytest.raises(ConfigError, match="dkim.private_key_file"):
        DkimSigner(settings.dkim)


def _for_smtp_signed(settings: Settings, values: dict[str, str]) -> bytes:
    """The sender's path: the dot-stuffed payload first, its signature made afterwards (on
    another thread) and put on top; returned as the server un-stuffs it."""
    newsletter = settings.newsletters[0]
    rendered = DigestRenderer(settings).render_digest(newsletter, EDITION_DATE, stories())
    template = MessageTemplate.digest(settings, newsletter, rendered, date=SENT_AT)
    wire, pending = template.for_smtp(Recipient(READER, make_message_id(settings, "e", 1, 2), values))
    assert len(pending) == 1 and wire.dot_stuffed and not wire.data.startswith(b"DKIM-Signature")
    data = wire.signed(b"".join(signature.complete() for signature in pending)).data
    assert data.startswith(b"DKIM-Signature: ") and data.endswith(b"\r\n.\r\n")
    return data.removesuffix(b".\r\n").replace(b"\r\n..", b"\r\n.")


def test_a_message_for_smtp_signed_elsewhere_verifies(
    render_settings: RenderSettings, key: rsa.RSAPrivateKey, dns: DnsLookup, tmp_path: Path
) -> None:
    settings = signed_settings(
        render_settings, write_key(key, tmp_path / "k.pem", serialization.PrivateFormat.PKCS8)
    )
    received = _for_smtp_signed(settings, DIGEST_VALUES)
    assert dkim.verify(received, dnsfunc=dns)
    # Its own fields are signed (and over-signed) too: one added on top breaks it.
    for added in (b"To: someone@else.example\r\n", b"List-Unsubscribe: <https://evil.example/u>\r\n"):
        assert not dkim.verify(added + received, dnsfunc=dns)
    assert not dkim.verify(received.replace(READER.encode(), b"other@readers.example"), dnsfunc=dns)


def test_a_reader_value_with_blanks_is_hashed_from_the_whole_body(
    render_settings: RenderSettings, key: rsa.RSAPrivateKey, dns: DnsLookup, tmp_path: Path
) -> None:
    """A value relaxed canonicalisation would change (runs of blanks) cannot be hashed between
    the template's pre-canonicalised parts: the whole body is joined and canonicalised."""
    settings = signed_settings(
        render_settings, write_key(key, tmp_path / "k.pem", serialization.PrivateFormat.PKCS8)
    )
    values = {**DIGEST_VALUES, "preferences_url": DIGEST_VALUES["preferences_url"] + "?a=b   c"}
    received = _for_smtp_signed(settings, values)
    assert b"b   c" in received  # the blanks are in the message as sent
    assert dkim.verify(received, dnsfunc=dns)
