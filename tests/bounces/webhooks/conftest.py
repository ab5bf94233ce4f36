"""Every provider configured: SNS's certificate on a loopback HTTPS server, a SendGrid key pair,
a Mailgun signing key and Postmark credentials."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.config import Settings
from tests.bounces.webhooks.support import (
    CERT_PATH,
    TOPIC,
    HttpsServer,
    SnsSigner,
    sendgrid_public_key,
    sns_signer,
)
from tests.conftest import SettingsFactory
from tests.support.http import Route
from tests.support.tls import make_certificates

BOUNCE_DOMAIN = "bounce.londondaily.example"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
POSTMARK_USER = "postmark"
POSTMARK_PASSWORD = "correct horse battery staple"
MAX_AGE = 300


@pytest.fixture
def sns_server(tmp_path: Path) -> Iterator[HttpsServer]:
    with HttpsServer(make_certificates(tmp_path / "tls")) as server:
        yield server


@pytest.fixture(scope="session")
def _sns_key_pair() -> SnsSigner:
    return sns_signer("")  # the RSA key takes a moment: one for the session


@pytest.fixture
def signer(sns_server: HttpsServer, _sns_key_pair: SnsSigner) -> SnsSigner:
    sns_server.route(
        CERT_PATH, Route(body=_sns_key_pair.certificate_pem, content_type="application/x-pem-file")
    )
    return SnsSigner(_sns_key_pair.key, _sns_key_pair.certificate_pem, sns_server.url(CERT_PATH))


@pytest.fixture(scope="session")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def settings(
    make_settings: SettingsFactory,
    sns_server: HttpsServer,
    signer: SnsSigner,
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> Settings:
    origin = re.escape(sns_server.url(""))
    webhooks = {
        "ses_topic_arns": [TOPIC],
        "sns_certificate_url": rf"^{origin}/SimpleNotificationService-[0-9a-f]+\.pem$",
        "sns_ca_file": str(sns_server.tls.ca),
        "postmark_username": POSTMARK_USER,
        "postmark_password": POSTMARK_PASSWORD,
        "sendgrid_public_key": sendgrid_public_key(sendgrid_key),
        "mailgun_signing_key": MAILGUN_KEY,
        "max_age_seconds": MAX_AGE,
    }
    return make_settings(bounces={"domain": BOUNCE_DOMAIN, "webhooks": webhooks})
