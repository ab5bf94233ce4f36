"""Amazon SES through SNS: signed notifications recorded once, everything else refused unchanged."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

import httpx

from newsletter.context import AppContext
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.states import SubscriberStatus
from tests.bounces.webhooks.conftest import MAX_AGE
from tests.bounces.webhooks.support import (
    CERT_PATH,
    TOPIC,
    HttpsServer,
    SnsSigner,
    bounce_events,
    delivery,
    now_utc,
    ses_bounce,
    ses_complaint,
    snapshot,
    subscriber,
)
from tests.support.editions import EditionFactory, addresses, deliveries
from tests.support.http import Route


async def _post(client: httpx.AsyncClient, message: dict[str, Any] | bytes) -> httpx.Response:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    # SNS posts JSON as text/plain, with its message type in a header.
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"}
    return await client.post("/webhooks/ses", content=body, headers=headers)


async def test_a_signed_hard_bounce_marks_the_reader_and_the_row(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory, signer: SnsSigner
) -> None:
    edition = await edition_for(2)
    row, other = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    verp = BounceTags(context.settings).return_path(TagKind.DELIVERY, row.id)

    response = await _post(client, signer.notification(ses_bounce([address], source=verp), message_id="m-1"))

    assert response.status_code == 200, response.text
    assert response.json() == {"events": 1, "recorded": 1, "duplicates": 0}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (await subscriber(context, row.subscriber_id)).status == SubscriberStatus.BOUNCED
    assert (await subscriber(context, other.subscriber_id)).status == SubscriberStatus.ACTIVE
    assert (await delivery(context, row.id)).bounce == "hard"
    [event] = await bounce_events(context)
    assert (event.event_key, event.source, event.kind, event.matched_by, event.status) == (
        f"ses:m-1/{address}",
        "ses",
        "hard",
        "verp",
        "5.1.1",
    )


async def test_a_complaint_by_message_id_unsubscribes(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory, signer: SnsSigner
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    message_id = MessageIds(context.settings).digest(edition.id, row.subscriber_id)

    notification = signer.notification(ses_complaint(address, message_id=message_id), version="2")
    response = await _post(client, notification)

    assert response.status_code == 200, response.text
    assert (await subscriber(context, row.subscriber_id)).status == SubscriberStatus.UNSUBSCRIBED
    assert (await delivery(context, row.id)).bounce == "complaint"
    assert [e.matched_by for e in await bounce_events(context)] == ["message-id"]
    assert (await snapshot(context)).suppressions == 1


async def test_the_same_notification_twice_is_recorded_once_and_the_certificate_fetched_once(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    signer: SnsSigner,
    sns_server: HttpsServer,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    notification = signer.notification(ses_bounce([address]))

    first = await _post(client, notification)
    again = await _post(client, notification)

    assert first.json() == {"events": 1, "recorded": 1, "duplicates": 0}
    assert again.json() == {"events": 1, "recorded": 0, "duplicates": 1}
    assert len(await bounce_events(context)) == 1
    assert (await subscriber(context, row.subscriber_id)).hard_bounces == 1
    assert len(sns_server.requests_for(CERT_PATH)) == 1


async def test_each_recipient_of_a_notification_is_one_event_matched_by_its_own_address(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory, signer: SnsSigner
) -> None:
    edition = await edition_for(3)
    first, second, third = await deliveries(context, edition.id)
    emails = await addresses(context)
    # The envelope sender names the first reader's row; with two recipients it names neither.
    verp = BounceTags(context.settings).return_path(TagKind.DELIVERY, first.id)
    recipients = [emails[second.subscriber_id], emails[third.subscriber_id]]
    bounce = ses_bounce(recipients, bounce_type="Undetermined", source=verp)

    response = await _post(client, signer.notification(bounce, message_id="m-2"))

    assert response.json() == {"events": 2, "recorded": 2, "duplicates": 0}
    events = await bounce_events(context)
    assert [(e.event_key, e.kind, e.matched_by, e.subscriber_id) for e in events] == [
        (f"ses:m-2/{recipients[0]}", "soft", "address", second.subscriber_id),
        (f"ses:m-2/{recipients[1]}", "soft", "address", third.subscriber_id),
    ]
    assert (await delivery(context, first.id)).bounce is None


async def test_a_forged_signature_changes_nothing(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory, signer: SnsSigner
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    genuine = signer.notification(ses_bounce(["someone@elsewhere.example"]))
    forged = {**genuine, "Message": json.dumps(ses_bounce([address]))}
    before = await snapshot(context)

    response = await _post(client, forged)

    assert response.status_code == 403
    assert response.json() == {"detail": "the signature does not verify"}
    assert await snapshot(context) == before


async def test_a_stale_notification_is_refused_before_its_certificate_is_fetched(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    signer: SnsSigner,
    sns_server: HttpsServer,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    old = now_utc() - dt.timedelta(seconds=MAX_AGE + 60)
    before = await snapshot(context)

    response = await _post(client, signer.notification(ses_bounce([address]), timestamp=old))

    assert response.status_code == 403
    assert "timestamp" in response.json()["detail"]
    assert await snapshot(context) == before
    assert sns_server.requests_for(CERT_PATH) == []


async def test_an_unlisted_topic_is_refused(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    signer: SnsSigner,
    sns_server: HttpsServer,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    other_topic = TOPIC.replace("newsletter-bounces", "someone-elses")
    before = await snapshot(context)

    response = await _post(client, signer.notification(ses_bounce([address]), topic=other_topic))

    assert response.status_code == 403
    assert "TopicArn" in response.json()["detail"]
    assert await snapshot(context) == before
    assert sns_server.requests_for(CERT_PATH) == []


async def test_a_certificate_url_the_pattern_refuses_is_never_fetched(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    signer: SnsSigner,
    sns_server: HttpsServer,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    # The same certificate, served where the pattern does not allow: the signature would verify.
    elsewhere = sns_server.route("/attacker.pem", Route(body=signer.certificate_pem))
    before = await snapshot(context)

    response = await _post(client, signer.notification(ses_bounce([address]), cert_url=elsewhere))

    assert response.status_code == 403
    assert "SigningCertURL" in response.json()["detail"]
    assert await snapshot(context) == before
    assert sns_server.requests_for("/attacker.pem") == []


async def test_a_certificate_that_is_not_there_is_a_refusal(
    client: httpx.AsyncClient, context: AppContext, signer: SnsSigner, sns_server: HttpsServer
) -> None:
    missing = sns_server.url("/SimpleNotificationService-0badc0de.pem")

    response = await _post(client, signer.notification(ses_bounce(["a@readers.example"]), cert_url=missing))

    assert response.status_code == 403
    assert len(sns_server.requests_for("/SimpleNotificationService-0badc0de.pem")) == 1
    assert (await snapshot(context)).events == 0


async def test_other_notifications_are_acknowledged_and_change_nothing(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory, signer: SnsSigner
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    address = (await addresses(context))[row.subscriber_id]
    delivered = {**ses_bounce([address]), "notificationType": "Delivery"}
    before = await snapshot(context)

    responses = [
        await _post(client, signer.notification(delivered, message_id="m-3")),
        await _post(client, signer.notification({"eventType": "Open"}, message_id="m-4")),
    ]

    assert [(r.status_code, r.json()) for r in responses] == [
        (200, {"events": 0, "recorded": 0, "duplicates": 0})
    ] * 2
    assert await snapshot(context) == before


async def test_a_malformed_body_is_400(client: httpx.AsyncClient, signer: SnsSigner) -> None:
    unsigned = {
        k: v for k, v in signer.notification(ses_bounce(["a@readers.example"])).items() if k != "Signature"
    }

    not_json = await _post(client, b"{not json")
    incomplete = await _post(client, unsigned)
    not_sns = await _post(client, {"Type": "Something"})

    assert [r.status_code for r in (not_json, incomplete, not_sns)] == [400, 400, 400]
    assert not_json.json()["detail"].startswith("body: is not valid JSON")
    assert incomplete.json() == {"detail": "Signature: missing, or not a string"}
    assert "\n" not in not_sns.json()["detail"]


async def test_a_subscription_is_confirmed_on_the_certificates_host_only(
    client: httpx.AsyncClient, signer: SnsSigner, sns_server: HttpsServer
) -> None:
    sns_server.route("/", Route(body=b"<ConfirmSubscriptionResponse/>", content_type="text/xml"))
    query = "?" + urlencode({"Action": "ConfirmSubscription", "TopicArn": TOPIC, "Token": "2336412f"})
    elsewhere = f"https://localhost:{sns_server.port}/{query}"  # the same server, by another name

    refused = await _post(client, signer.confirmation(elsewhere))
    assert refused.status_code == 403
    assert sns_server.requests_for("/") == []

    forged = {**signer.confirmation(sns_server.url("/" + query)), "Token": "forged"}
    assert (await _post(client, forged)).status_code == 403
    assert sns_server.requests_for("/") == []

    confirmed = await _post(client, signer.confirmation(sns_server.url("/" + query)))
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"confirmed": True}
    assert len(sns_server.requests_for("/")) == 1
