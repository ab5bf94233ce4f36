"""Requests signed as each provider signs them, a loopback HTTPS server for SNS's certificate and
subscription confirmations, and a snapshot of everything a webhook could change."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from newsletter.context import AppContext
from newsletter.database.models import BounceEvent, Delivery, Subscriber, Suppression
from tests.support.http import FeedServer, _handler_for
from tests.support.tls import TlsFiles

TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-bounces"
CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"
SENDER = "news@londondaily.example"


class HttpsServer(FeedServer):
    """tests.support.http's server behind TLS, with the certificate of `tls`."""

    def __init__(self, tls: TlsFiles) -> None:
        super().__init__()
        self.tls = tls

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HttpsServer:
        return self.start()

    def start(self) -> HttpsServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert, self.tls.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="https-server", daemon=True)
        self._thread.start()
        return self


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- Amazon SNS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SnsSigner:
    """What SNS signs with: an RSA key and its certificate, served at `cert_url`."""

    key: rsa.RSAPrivateKey
    certificate_pem: bytes
    cert_url: str

    def sign(self, fields: dict[str, str], *, version: str = "1") -> dict[str, str]:
        names = SNS_SIGNED[fields["Type"]]
        text = "".join(f"{name}\n{fields[name]}\n" for name in names if name in fields)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode("utf-8"), padding.PKCS1v15(), algorithm)
        return {
            **fields,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode("ascii"),
            "SigningCertURL": fields.get("SigningCertURL", self.cert_url),
        }

    def notification(
        self,
        message: dict[str, Any],
        *,
        message_id: str = "b3f0c0a2-5b1e-4c1d-9f8e-2a7d1c3e4f50",
        topic: str = TOPIC,
        timestamp: dt.datetime | None = None,
        version: str = "1",
        cert_url: str | None = None,
    ) -> dict[str, str]:
        fields = {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic,
            "Message": json.dumps(message),
            "Timestamp": sns_time(timestamp or now_utc()),
            "UnsubscribeURL": "https://sns.example/?Action=Unsubscribe",
        }
        if cert_url is not None:
            fields["SigningCertURL"] = cert_url
        return self.sign(fields, version=version)

    def confirmation(self, subscribe_url: str, *, topic: str = TOPIC) -> dict[str, str]:
        fields = {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425f004aed",
            "TopicArn": topic,
            "Message": f"You have chosen to subscribe to the topic {topic}.",
            "SubscribeURL": subscribe_url,
            "Timestamp": sns_time(now_utc()),
        }
        return self.sign(fields, version="2")


SNS_SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"
    ],
}  # fmt: skip


def sns_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sns_signer(cert_url: str) -> SnsSigner:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.eu-west-1.amazonaws.com")])
    now = now_utc()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return SnsSigner(key, certificate.public_bytes(serialization.Encoding.PEM), cert_url)


def ses_bounce(
    recipients: list[str],
    *,
    bounce_type: str = "Permanent",
    source: str = SENDER,
    message_id: str | None = None,
    headers: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": r,
                    "status": "5.1.1",
                    "action": "failed",
                    "diagnosticCode": "smtp; 550 5.1.1 no such user",
                }
                for r in recipients
            ],
            "timestamp": "2024-05-01T10:00:00.000Z",
            "feedbackId": "0100018f-bounce",
        },
        "mail": _ses_mail(recipients, source, message_id, headers),
    }


def ses_complaint(recipient: str, *, message_id: str | None = None) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": recipient}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2024-05-01T10:00:00.000Z",
            "feedbackId": "0100018f-complaint",
        },
        "mail": _ses_mail([recipient], SENDER, message_id, None),
    }


def _ses_mail(
    recipients: list[str], source: str, message_id: str | None, headers: list[dict[str, str]] | None
) -> dict[str, Any]:
    mail: dict[str, Any] = {
        "timestamp": "2024-05-01T09:59:58.000Z",
        "source": source,
        "messageId": "0100018f-ses-own-id",
        "destination": recipients,
        "tags": {"ses:configuration-set": ["newsletter"]},
        "commonHeaders": {"from": [SENDER], "to": recipients, "subject": "London Daily"},
    }
    if message_id is not None:
        mail["commonHeaders"]["messageId"] = message_id
    if headers is not None:
        mail["headers"] = headers
    return mail


# --- SendGrid, Mailgun, Postmark ----------------------------------------------------------


def sendgrid_public_key(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def sendgrid_request(
    key: ec.EllipticCurvePrivateKey, body: bytes, *, timestamp: dt.datetime | None = None
) -> dict[str, str]:
    """The headers SendGrid sends with `body`."""
    stamp = str(int((timestamp or now_utc()).timestamp()))
    signature = key.sign(stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode("ascii"),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def mailgun_body(
    signing_key: str, event_data: dict[str, Any], *, token: str, timestamp: dt.datetime | None = None
) -> dict[str, Any]:
    stamp = str(int((timestamp or now_utc()).timestamp()))
    digest = hmac.new(signing_key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": stamp, "token": token, "signature": digest}, "event-data": event_data}


def basic_auth(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {encoded}"}


# --- what a webhook may change ------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    events: int
    subscribers: tuple[tuple[int, str, int], ...]  # id, status, hard bounces
    ledger: tuple[tuple[int, str | None], ...]  # delivery id, bounce
    suppressions: int


async def snapshot(context: AppContext) -> Snapshot:
    async with context.db.session() as session:
        events = await session.scalar(select(func.count()).select_from(BounceEvent))
        subscribers = (
            await session.execute(select(Subscriber.id, Subscriber.status, Subscriber.hard_bounces))
        ).all()
        ledger = (await session.execute(select(Delivery.id, Delivery.bounce).order_by(Delivery.id))).all()
        suppressions = await session.scalar(select(func.count()).select_from(Suppression))
    return Snapshot(
        int(events or 0),
        tuple(sorted((s.id, str(s.status), s.hard_bounces) for s in subscribers)),
        tuple((row.id, row.bounce) for row in ledger),
        int(suppressions or 0),
    )


async def bounce_events(context: AppContext) -> list[BounceEvent]:
    async with context.db.session() as session:
        return list((await session.scalars(select(BounceEvent).order_by(BounceEvent.id))).all())


async def subscriber(context: AppContext, subscriber_id: int) -> Subscriber:
    async with context.db.session() as session:
        found = await session.get(Subscriber, subscriber_id)
        assert found is not None
        return found


async def delivery(context: AppContext, delivery_id: int) -> Delivery:
    async with context.db.session() as session:
        found = await session.get(Delivery, delivery_id)
        assert found is not None
        return found
