"""Amazon SNS messages posted to an HTTPS subscription: their signature, topic and time, and the
subscription's confirmation.

Trust comes from the certificate: it is fetched over verified HTTPS, and only from a
SigningCertURL matching `sns_certificate_url` (by default SNS's own hosts). A
SubscriptionConfirmation, once its signature verifies, is confirmed by GETting its SubscribeURL,
and only when that is an https URL on the very host (and port) the certificate came from, asking
`Action=ConfirmSubscription` for the message's own topic: the one GET a forged message could
otherwise aim anywhere.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from newsletter.bounces.webhooks.certificates import Certificates
from newsletter.bounces.webhooks.errors import Forbidden, Malformed, Unavailable
from newsletter.bounces.webhooks.fields import json_object
from newsletter.bounces.webhooks.window import check_fresh
from newsletter.config.bounces import WebhooksConfig
from newsletter.logs import get_logger

log = get_logger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION = "SubscriptionConfirmation"
UNSUBSCRIPTION = "UnsubscribeConfirmation"
_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
# The fields each type's signature covers, in this order ("Name\nvalue\n" each).
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION: _CONFIRMATION_FIELDS,
    UNSUBSCRIPTION: _CONFIRMATION_FIELDS,
}
_OPTIONAL = frozenset({"Subject"})
_ENVELOPE = ("SignatureVersion", "Signature", "SigningCertURL")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True)
class SnsMessage:
    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: datetime
    signature_version: str
    signature: str
    signing_cert_url: str
    subscribe_url: str | None
    signed: bytes  # the string the signature covers


def parse(payload: object) -> SnsMessage:
    fields = json_object(payload, "an SNS message")
    kind = fields.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_FIELDS:
        raise Malformed("Type: not an SNS message type")
    values = _strings(fields, (*SIGNED_FIELDS[kind], *_ENVELOPE))
    signed = "".join(f"{name}\n{values[name]}\n" for name in SIGNED_FIELDS[kind] if name in values)
    return SnsMessage(
        type=kind,
        message_id=values["MessageId"],
        topic_arn=values["TopicArn"],
        message=values["Message"],
        timestamp=_moment(values["Timestamp"]),
        signature_version=values["SignatureVersion"],
        signature=values["Signature"],
        signing_cert_url=values["SigningCertURL"],
        subscribe_url=values.get("SubscribeURL"),
        signed=signed.encode("utf-8", "surrogatepass"),
    )


class SnsChecks:
    def __init__(self, config: WebhooksConfig, certificates: Certificates) -> None:
        self.config = config
        self.certificates = certificates

    async def verify(self, message: SnsMessage, now: datetime) -> None:
        """The cheap checks first: a certificate is fetched only for a message that passed them."""
        if message.topic_arn not in self.config.ses_topic_arns:
            raise Forbidden("TopicArn: not one of bounces.webhooks.ses_topic_arns")
        check_fresh(message.timestamp, now, self.config.max_age_seconds)
        algorithm = _HASHES.get(message.signature_version)
        if algorithm is None:
            raise Forbidden("SignatureVersion: neither 1 nor 2")
        if not certificate_url_allowed(message.signing_cert_url, self.config.sns_certificate_url):
            raise Forbidden("SigningCertURL: not an address bounces.webhooks.sns_certificate_url allows")
        signature = _signature(message.signature)
        key = await self.certificates.key(message.signing_cert_url)
        try:
            key.verify(signature, message.signed, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise Forbidden("the signature does not verify") from None

    async def confirm(self, message: SnsMessage) -> None:
        """GET the SubscribeURL of a verified SubscriptionConfirmation."""
        url = confirmation_url(message)
        try:
            async with self.certificates.client() as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            log.warning("webhook.sns_confirmation_failed", topic=message.topic_arn, error=type(exc).__name__)
            raise Unavailable("the subscription could not be confirmed; try again") from None
        if response.status_code != 200:
            log.warning(
                "webhook.sns_confirmation_failed", topic=message.topic_arn, status=response.status_code
            )
            raise Unavailable("the subscription could not be confirmed; try again")
        log.info("webhook.sns_subscribed", topic=message.topic_arn)


def certificate_url_allowed(url: str, pattern: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme != "https" or "@" in parts.netloc:
        return False
    return re.fullmatch(pattern, url) is not None


def confirmation_url(message: SnsMessage) -> str:
    url = message.subscribe_url or ""
    if not _same_origin(url, message.signing_cert_url):
        raise Forbidden("SubscribeURL: not an https address on the certificate's host")
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [message.topic_arn]:
        raise Forbidden("SubscribeURL: not a confirmation of this topic")
    return url


def _same_origin(url: str, certificate_url: str) -> bool:
    try:
        target, certificate = urlsplit(url), urlsplit(certificate_url)
        origin = (target.hostname, target.port) == (certificate.hostname, certificate.port)
    except ValueError:
        return False
    return origin and target.scheme == "https" and "@" not in target.netloc


def _strings(fields: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in names:
        value = fields.get(name)
        if value is None and name in _OPTIONAL:
            continue
        if not isinstance(value, str):
            raise Malformed(f"{name}: missing, or not a string")
        values[name] = value
    return values


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed("Timestamp: not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _signature(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Forbidden("the signature does not verify") from None
