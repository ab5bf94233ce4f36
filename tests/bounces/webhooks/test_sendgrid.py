"""SendGrid's signed event webhook: the signature over timestamp and body, then a batch of events."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.context import AppContext
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTags, TagKind
from tests.bounces.webhooks.conftest import MAX_AGE
from tests.bounces.webhooks.support import (
    bounce_events,
    delivery,
    now_utc,
    sendgrid_request,
    snapshot,
    subscriber,
)
from tests.support.editions import EditionFactory, addresses, deliveries


def _event(email: str, event: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1714557600,
        "event": event,
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "category": ["daily"],
        **extra,
    }


async def _post(
    client: httpx.AsyncClient, key: ec.EllipticCurvePrivateKey, events: Any, **signing: Any
) -> httpx.Response:
    body = json.dumps(events).encode()
    return await client.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_request(key, body, **signing)
    )


async def test_a_batch_records_each_bounce_and_complaint(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    edition = await edition_for(5)
    rows = await deliveries(context, edition.id)
    emails = [(await addresses(context))[row.subscriber_id] for row in rows]
    message_id = MessageIds(context.settings).digest(edition.id, rows[0].subscriber_id)
    tag = BounceTags(context.settings).tag(TagKind.DELIVERY, rows[1].id)
    events = [
        _event(emails[0], "bounce", "e0", type="bounce", status="5.1.1", reason="550 5.1.1 no such user",
               **{"smtp-id": message_id.strip("<>")}),
        _event(emails[1], "spamreport", "e1", delivery=tag),  # a custom argument carries the tag
        _event(emails[2], "bounce", "e2", type="blocked", status="4.7.1", reason="blocked by policy"),
        _event(emails[3], "dropped", "e3", reason="Bounced Address"),
        _event(emails[4], "deferred", "e4", response="451 try again later", attempt="1"),
        _event(emails[4], "delivered", "e5", response="250 OK"),
    ]  # fmt: skip

    response = await _post(client, sendgrid_key, events)

    assert response.status_code == 200, response.text
    assert response.json() == {"events": 5, "recorded": 4, "duplicates": 0}
    statuses = [(await subscriber(context, row.subscriber_id)).status for row in rows]
    assert statuses == ["bounced", "unsubscribed", "active", "bounced", "active"]
    assert [(await delivery(context, row.id)).bounce for row in rows] == [
        "hard",
        "complaint",
        None,
        None,
        None,
    ]
    recorded = [(e.event_key, e.kind, e.matched_by) for e in await bounce_events(context)]
    assert recorded == [
        ("sendgrid:e0", "hard", "message-id"),
        ("sendgrid:e1", "complaint", "header"),
        ("sendgrid:e2", "soft", "address"),
        ("sendgrid:e3", "hard", "address"),
    ]


async def test_the_same_batch_twice_is_recorded_once(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    events = [_event((await addresses(context))[row.subscriber_id], "bounce", "same", type="bounce")]

    first = await _post(client, sendgrid_key, events)
    again = await _post(client, sendgrid_key, events)

    assert (first.json()["recorded"], again.json()["duplicates"]) == (1, 1)
    assert len(await bounce_events(context)) == 1
    assert (await subscriber(context, row.subscriber_id)).hard_bounces == 1


async def test_a_wrong_signature_changes_nothing(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    events = [_event((await addresses(context))[row.subscriber_id], "bounce", "x1", type="bounce")]
    body = json.dumps(events).encode()
    genuine = sendgrid_request(sendgrid_key, body)
    before = await snapshot(context)

    attempts = [
        await _post(client, ec.generate_private_key(ec.SECP256R1()), events),  # another key
        await client.post("/webhooks/sendgrid", content=body + b" ", headers=genuine),  # the body changed
        await client.post(
            "/webhooks/sendgrid",
            content=body,
            headers={
                **genuine,
                "X-Twilio-Email-Event-Webhook-Timestamp": str(int(now_utc().timestamp()) + 1),
            },
        ),
        await client.post("/webhooks/sendgrid", content=body, headers={"Content-Type": "application/json"}),
        await client.post(
            "/webhooks/sendgrid",
            content=body,
            headers={**genuine, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"},
        ),
    ]

    assert [r.status_code for r in attempts] == [403] * 5
    assert attempts[0].json() == {"detail": "the signature does not verify"}
    assert await snapshot(context) == before


async def test_a_stale_timestamp_changes_nothing(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    events = [_event((await addresses(context))[row.subscriber_id], "bounce", "x2", type="bounce")]
    before = await snapshot(context)

    stale = await _post(client, sendgrid_key, events, timestamp=now_utc() - dt.timedelta(seconds=MAX_AGE + 5))
    future = await _post(
        client, sendgrid_key, events, timestamp=now_utc() + dt.timedelta(seconds=MAX_AGE + 5)
    )

    assert (stale.status_code, future.status_code) == (403, 403)
    assert "timestamp" in stale.json()["detail"]
    assert await snapshot(context) == before


async def test_other_events_are_acknowledged_and_change_nothing(
    client: httpx.AsyncClient,
    context: AppContext,
    edition_for: EditionFactory,
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    email = (await addresses(context))[row.subscriber_id]
    events = [
        _event(email, "open", "o1", useragent="Mozilla/5.0"),
        _event(email, "processed", "o2"),
        _event(email, "dropped", "o3", reason="Unsubscribed Address"),
    ]
    before = await snapshot(context)

    response = await _post(client, sendgrid_key, events)

    assert (response.status_code, response.json()["events"]) == (200, 0)
    assert await snapshot(context) == before


async def test_a_malformed_signed_body_is_400(
    client: httpx.AsyncClient, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    broken = b'[{"event": "bounce",'
    not_json = await client.post(
        "/webhooks/sendgrid", content=broken, headers=sendgrid_request(sendgrid_key, broken)
    )
    an_object = await _post(client, sendgrid_key, {"event": "bounce"})
    not_events = await _post(client, sendgrid_key, ["bounce"])

    assert [r.status_code for r in (not_json, an_object, not_events)] == [400, 400, 400]
    assert an_object.json() == {"detail": "body: SendGrid posts a JSON array of events"}


async def test_signed_events_with_text_no_database_takes_are_stored_cleaned(
    client: httpx.AsyncClient, context: AppContext, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    long_id = "x" * 300
    events = [
        _event(
            "nul\u0000@readers.example", "bounce", long_id, reason="550 no\u0000 such user", status="5.1.1"
        ),
        _event("lone\ud800@readers.example", "bounce", "s2", reason="\udfff"),
    ]
    body = json.dumps(events).encode()  # json.dumps escapes both: \u0000 and \ud800

    first = await client.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_request(sendgrid_key, body)
    )
    again = await client.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_request(sendgrid_key, body)
    )

    assert first.json() == {"events": 2, "recorded": 2, "duplicates": 0}, first.text
    assert again.json()["duplicates"] == 2
    stored = await bounce_events(context)
    assert [e.outcome for e in stored] == ["unmatched", "unmatched"]
    assert stored[0].event_key.startswith("sendgrid:sha256:") and len(stored[0].event_key) <= 200
    assert stored[0].diagnostic == "550 no such user"
    assert "\x00" not in (stored[0].recipient or "")
