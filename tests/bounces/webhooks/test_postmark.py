"""Postmark: HTTP Basic credentials, then one bounce or spam complaint record per request."""

from __future__ import annotations

from typing import Any

import httpx

from newsletter.context import AppContext
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.states import SubscriberStatus
from tests.bounces.webhooks.conftest import POSTMARK_PASSWORD, POSTMARK_USER
from tests.bounces.webhooks.support import basic_auth, bounce_events, delivery, snapshot, subscriber
from tests.support.editions import EditionFactory, addresses, deliveries

AUTH = basic_auth(POSTMARK_USER, POSTMARK_PASSWORD)


def _record(
    email: str, *, record_type: str = "Bounce", kind: str = "HardBounce", **extra: Any
) -> dict[str, Any]:
    return {
        "RecordType": record_type,
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "daily",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "news@londondaily.example",
        "BouncedAt": "2024-05-01T10:00:00.0000000Z",
        "Inactive": True,
        "Subject": "London Daily",
        **extra,
    }


async def test_a_hard_bounce_with_our_tag_in_its_metadata_marks_the_reader_and_the_row(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(2)
    row, other = await deliveries(context, edition.id)
    emails = await addresses(context)
    tag = BounceTags(context.settings).tag(TagKind.DELIVERY, row.id)

    record = _record(emails[row.subscriber_id], Metadata={"delivery": tag})
    response = await client.post("/webhooks/postmark", json=record, headers=AUTH)

    assert response.status_code == 200, response.text
    assert response.json() == {"events": 1, "recorded": 1, "duplicates": 0}
    assert (await subscriber(context, row.subscriber_id)).status == SubscriberStatus.BOUNCED
    assert (await subscriber(context, other.subscriber_id)).status == SubscriberStatus.ACTIVE
    assert (await delivery(context, row.id)).bounce == "hard"
    [event] = await bounce_events(context)
    assert (event.event_key, event.matched_by, event.status) == (
        "postmark:4323372036854775807/Bounce",
        "header",
        "5.1.1",
    )


async def test_a_spam_complaint_unsubscribes(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    email = (await addresses(context))[row.subscriber_id]

    record = _record(email, record_type="SpamComplaint", kind="SpamComplaint", ID=42)
    response = await client.post("/webhooks/postmark", json=record, headers=AUTH)

    assert response.status_code == 200, response.text
    assert (await subscriber(context, row.subscriber_id)).status == SubscriberStatus.UNSUBSCRIBED
    assert [(e.kind, e.matched_by, e.event_key) for e in await bounce_events(context)] == [
        ("complaint", "address", "postmark:42/SpamComplaint")
    ]


async def test_the_same_record_twice_is_recorded_once(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    record = _record((await addresses(context))[row.subscriber_id], kind="SoftBounce")

    answers = [(await client.post("/webhooks/postmark", json=record, headers=AUTH)).json() for _ in range(2)]

    assert answers == [
        {"events": 1, "recorded": 1, "duplicates": 0},
        {"events": 1, "recorded": 0, "duplicates": 1},
    ]
    assert [e.kind for e in await bounce_events(context)] == ["soft"]


async def test_wrong_or_missing_credentials_are_401_and_change_nothing(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    record = _record((await addresses(context))[row.subscriber_id])
    before = await snapshot(context)
    wrong = [
        basic_auth(POSTMARK_USER, POSTMARK_PASSWORD + "x"),
        basic_auth("someone", POSTMARK_PASSWORD),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer " + POSTMARK_PASSWORD},
        {},
    ]

    responses = [await client.post("/webhooks/postmark", json=record, headers=headers) for headers in wrong]

    assert {r.status_code for r in responses} == {401}
    assert responses[0].headers["www-authenticate"].startswith("Basic")
    assert await snapshot(context) == before


async def test_other_records_are_acknowledged_and_change_nothing(
    client: httpx.AsyncClient, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    email = (await addresses(context))[row.subscriber_id]
    before = await snapshot(context)
    records = [
        _record(email, record_type="Delivery"),
        _record(email, kind="AutoResponder"),
        _record(email, record_type="Open"),
    ]

    responses = [await client.post("/webhooks/postmark", json=r, headers=AUTH) for r in records]

    assert [(r.status_code, r.json()["events"]) for r in responses] == [(200, 0)] * 3
    assert await snapshot(context) == before


async def test_a_malformed_body_is_400_once_the_credentials_are_right(client: httpx.AsyncClient) -> None:
    broken = await client.post("/webhooks/postmark", content=b"[1, 2", headers=AUTH)
    a_list = await client.post("/webhooks/postmark", json=[_record("a@readers.example")], headers=AUTH)
    unauthenticated = await client.post("/webhooks/postmark", content=b"[1, 2")

    assert (broken.status_code, a_list.status_code, unauthenticated.status_code) == (400, 400, 401)
    assert broken.json()["detail"].startswith("body: is not valid JSON")
