"""What every webhook route shares: 404 until configured, the API's body limit, the configuration."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from newsletter.context import AppContext, open_context
from newsletter.errors import ConfigError
from newsletter.web import create_app
from tests.bounces.webhooks.support import sendgrid_public_key, sendgrid_request, snapshot
from tests.conftest import SettingsFactory

PROVIDERS = ("ses", "postmark", "sendgrid", "mailgun")


async def test_an_unconfigured_provider_is_404(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with open_context(settings) as context:
        transport = httpx.ASGITransport(app=create_app(settings, context))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            responses = [await client.post(f"/webhooks/{name}", json={}) for name in (*PROVIDERS, "other")]
            before_and_after = await snapshot(context)

    assert [r.status_code for r in responses] == [404] * 5
    assert responses[0].json() == {"detail": "not found"}
    assert before_and_after.events == 0


async def test_webhooks_take_bodies_up_to_the_apis_limit_and_no_more(
    make_settings: SettingsFactory, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    settings = make_settings(
        server={"max_body_bytes": 16 * 1024, "max_api_body_bytes": 64 * 1024},
        bounces={"webhooks": {"sendgrid_public_key": sendgrid_public_key(sendgrid_key)}},
    )
    opens = [{"event": "open", "email": f"r{n}@readers.example", "sg_event_id": f"o{n}"} for n in range(400)]
    within = json.dumps(opens).encode()  # over the pages' 16 KB, under the API's 64 KB
    over = json.dumps(opens * 3).encode()
    assert 16 * 1024 < len(within) < 64 * 1024 < len(over)

    async with open_context(settings) as context:
        transport = httpx.ASGITransport(app=create_app(settings, context))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            accepted = await client.post(
                "/webhooks/sendgrid", content=within, headers=sendgrid_request(sendgrid_key, within)
            )
            refused = await client.post(
                "/webhooks/sendgrid", content=over, headers=sendgrid_request(sendgrid_key, over)
            )
            page = await client.post("/subscribe", content=within)  # the pages keep their own limit

    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 413
    assert page.status_code == 413


@pytest.mark.parametrize(
    "webhooks, message",
    [
        ({"postmark_username": "postmark"}, "set both, or neither"),
        ({"sendgrid_public_key": "bm90IGEga2V5"}, "not a base64 DER public key"),
        ({"ses_topic_arns": ["newsletter-bounces"]}, "not an SNS topic ARN"),
        ({"sns_certificate_url": "^https://(sns"}, "not a regular expression"),
    ],
)
def test_bad_webhook_settings_are_refused_by_name(
    make_settings: SettingsFactory, webhooks: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(bounces={"webhooks": webhooks})


def test_a_sendgrid_key_must_be_ecdsa_p256(make_settings: SettingsFactory) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    der = rsa_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    with pytest.raises(ConfigError, match="not an ECDSA P-256 key"):
        make_settings(bounces={"webhooks": {"sendgrid_public_key": base64.b64encode(der).decode()}})


HOSTILE_BODIES = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b'"bounce"',
    b"\xff\xfe\x00",
    b"[" * 5000 + b"]" * 5000,
    b'{"Type": "Notification", "Timestamp": "0001-01-01T00:00:00+14:00"}',
    b'{"signature": {"timestamp": "-1e300", "token": "\\ud800", "signature": "\\u0000"}, "event-data": {}}',
    b'[{"event": "bounce", "email": "\\u0000@x", "sg_event_id": {"a": [1]}}]',
    b'{"RecordType": "Bounce", "Type": "HardBounce", "ID": [], "Email": 5}',
]


async def test_hostile_bodies_are_refused_without_a_server_error(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    before = await snapshot(context)
    headers = {"Authorization": "Basic " + base64.b64encode(b"postmark:wrong").decode()}
    statuses = {
        (name, (await client.post(f"/webhooks/{name}", content=body, headers=headers)).status_code)
        for name in PROVIDERS
        for body in HOSTILE_BODIES
    }

    assert {status for _, status in statuses} <= {400, 401, 403}
    assert {status for name, status in statuses if name == "postmark"} == {401}
    assert await snapshot(context) == before
