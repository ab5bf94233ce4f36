"""Mailgun: the HMAC of timestamp and token, the token once only, then its event."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import httpx

from newsletter.context import AppContext
from newsletter.personal.recipients import MessageIds
from newsletter.states import SubscriberStatus
from tests.bounces.webhooks.conftest import MAILGUN_KEY, MAX_AGE
from tests.bounces.webhooks.support import (
    bounce_events,
    delivery,
    mailgun_body,
    now_utc,
    snapshot,
    subscriber,
)
from tests.support.editions import EditionFactory, addresses, deliveries


def _failed(
    email: str, event_id: str, *, severity: str = "permanent", message_id: str = "x@y"
) -> dict[str, Any]:
    return {
        "event": "failed",
        "id": event_id,
        "timestamp": 1714557600.375624,
        "severity": severity,
        "reason": "bounce",
        "recipient": email,
        "message": {"headers": {"to": email, "message-id": message_id, "subject": "London Daily"}},
        "delivery-status": {
            "code": 550,
            "enhanced-code": "5.1.1",
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "attempt-no": 1,
        },
        "user-variables": {"edition": "daily"},
        "tags": ["daily"],
    }


def _signed(event_data: dict[str, Any], **options: Any) -> dict[str, Any]:
    return mailgun_body(MAILGUN_KEY, event_data, token=options.pop("token", secrets.token_hex(25)), **options)


async def test_a_permanent_failure_marks_the_reader_and_the_row(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(2)
    row, other = await deliveries(context, edition.id)
    email = (await addresses(context))[row.subscriber_id]
    # Mailgun gives the Message-ID without its angle brackets.
    message_id = MessageIds(context.settings).digest(edition.id, row.subscriber_id).strip("<>")

    response = await client.post(
        "/webhooks/mailgun", json=_signed(_failed(email, "ev-1", message_id=message_id))
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"events": 1, "recorded": 1, "duplicates": 0}
    assert (await subscriber(context, row.subscriber_id)).status == SubscriberStatus.BOUNCED
    assert (await subscriber(context, other.subscriber_id)).status == SubscriberStatus.ACTIVE
    assert (await delivery(context, row.id)).bounce == "hard"
    assert [(e.event_key, e.matched_by, e.status) for e in await bounce_events(context)] == [
        ("mailgun:ev-1", "message-id", "5.1.1")
    ]


async def test_a_complaint_unsubscribes_and_a_temporary_failure_counts(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(2)
    complainer, retried = await deliveries(context, edition.id)
    emails = await addresses(context)
    complaint = {"event": "complained", "id": "ev-2", "recipient": emails[complainer.subscriber_id]}

    first = await client.post("/webhooks/mailgun", json=_signed(complaint))
    second = await client.post(
        "/webhooks/mailgun",
        json=_signed(_failed(emails[retried.subscriber_id], "ev-3", severity="temporary")),
    )

    assert (first.status_code, second.status_code) == (200, 200)
    assert (await subscriber(context, complainer.subscriber_id)).status == SubscriberStatus.UNSUBSCRIBED
    assert (await subscriber(context, retried.subscriber_id)).status == SubscriberStatus.ACTIVE
    assert [(e.kind, e.outcome) for e in await bounce_events(context)] == [
        ("complaint", "unsubscribed"),
        ("soft", "counted"),
    ]


async def test_the_same_event_twice_is_recorded_once_and_a_replayed_request_refused(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    event = _failed((await addresses(context))[row.subscriber_id], "ev-4")
    request = _signed(event)

    first = await client.post("/webhooks/mailgun", json=request)
    resent = await client.post("/webhooks/mailgun", json=_signed(event))  # signed anew: a retry
    after = await snapshot(context)
    replayed = await client.post("/webhooks/mailgun", json=request)

    assert first.json() == {"events": 1, "recorded": 1, "duplicates": 0}
    assert resent.json() == {"events": 1, "recorded": 0, "duplicates": 1}
    assert replayed.status_code == 403
    assert "replayed" in replayed.json()["detail"]
    assert await snapshot(context) == after
    assert after.events == 1


async def test_a_wrong_signature_changes_nothing(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    event = _failed((await addresses(context))[row.subscriber_id], "ev-5")
    forged = mailgun_body("key-not-ours", event, token=secrets.token_hex(25))
    tampered = _signed(event)
    tampered["signature"]["token"] = secrets.token_hex(25)
    unsigned = {"event-data": event}
    before = await snapshot(context)

    responses = [await client.post("/webhooks/mailgun", json=body) for body in (forged, tampered, unsigned)]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert responses[0].json() == {"detail": "the signature does not verify"}
    assert await snapshot(context) == before


async def test_a_stale_timestamp_changes_nothing(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    event = _failed((await addresses(context))[row.subscriber_id], "ev-6")
    old = now_utc() - dt.timedelta(seconds=MAX_AGE + 5)
    before = await snapshot(context)

    response = await client.post("/webhooks/mailgun", json=_signed(event, timestamp=old))

    assert response.status_code == 403
    assert "timestamp" in response.json()["detail"]
    assert await snapshot(context) == before


async def test_other_events_are_acknowledged_and_change_nothing(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    email = (await addresses(context))[row.subscriber_id]
    before = await snapshot(context)
    events = [{"event": "delivered", "id": "d-1", "recipient": email}, {"event": "opened", "id": "d-2"}]

    responses = [await client.post("/webhooks/mailgun", json=_signed(e)) for e in events]

    assert [(r.status_code, r.json()["events"]) for r in responses] == [(200, 0), (200, 0)]
    assert await snapshot(context) == before


async def test_a_malformed_body_is_400(client: httpx.AsyncClient) -> None:
    not_json = await client.post("/webhooks/mailgun", content=b"signature=abc&token=def")
    a_list = await client.post("/webhooks/mailgun", json=[1])
    no_event = await client.post("/webhooks/mailgun", json={**_signed({}), "event-data": "failed"})
    repeated_key = await client.post(
        "/webhooks/mailgun",
        content=b'{"event-data": {}, "event-data": {}}',
        headers={"Content-Type": "application/json"},
    )

    assert [r.status_code for r in (not_json, a_list, no_event, repeated_key)] == [400] * 4
    assert no_event.json() == {"detail": "event-data: missing, or not an object"}
