"""The admin subscribers API through HTTP: list, add or import, erase."""

from __future__ import annotations

import json
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition, Subscriber, Suppression, utcnow
from newsletter.personal.links import Links
from newsletter.subscriptions.addresses import email_hash
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import (
    all_rows,
    choices,
    count,
    events,
    nothing_stored,
    outbox,
    owner,
    serve,
    subscriber,
)
from tests.web.test_pages_signup import TWO_NEWSLETTERS


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/api/subscribers"), ("POST", "/api/subscribers"), ("DELETE", "/api/subscribers/a@example.com")],
)
async def test_the_api_needs_the_admin_token(
    client: httpx.AsyncClient, context: AppContext, method: str, url: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = await client.request(method, url, headers=headers, json={"email": "a@example.com"})
        assert response.status_code == 401
    assert await nothing_stored(context)


async def test_add_one_confirmed_then_list(
    client: httpx.AsyncClient, context: AppContext, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/subscribers", json={"email": "Imported@Example.com", "confirmed": True}, headers=admin_headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["results"] == [{"email": "Imported@example.com", "result": "added"}]
    assert body["added"] == 1
    assert await outbox(context) == []
    listed = (await client.get("/api/subscribers", headers=admin_headers)).json()
    assert listed["total"] == 1 and listed["page"] == 1
    (item,) = listed["items"]
    assert (item["email"], item["status"], item["newsletters"]) == (
        "Imported@example.com",
        "active",
        {"daily": []},
    )
    assert item["confirmed_at"] is not None and item["created_at"] is not None
    (event,) = await events(context, "import")
    assert json.loads(event.detail or "{}")["source"] == "api"


async def test_add_many_with_choices_and_without_confirmation(
    make_settings: SettingsFactory, admin_headers: dict[str, str]
) -> None:
    async with serve(make_settings(newsletters=TWO_NEWSLETTERS)) as (http, context):
        items = [
            {"email": "one@example.com", "newsletters": ["daily"], "sections": ["World"]},
            {"email": "two@example.com", "newsletters": ["daily", "weekly"]},
            {"email": "one@example.com", "confirmed": True},
        ]
        response = await http.post("/api/subscribers", json=items, headers=admin_headers)
        assert response.status_code == 200
        assert [r["result"] for r in response.json()["results"]] == ["added", "added", "updated"]
        one = await subscriber(context, "one@example.com")
        two = await subscriber(context, "two@example.com")
        assert one is not None and two is not None
        assert (one.status, two.status) == ("active", "pending")
        assert await choices(context, one.id) == {"daily": '["World"]'}
        assert await choices(context, two.id) == {"daily": "[]", "weekly": "[]"}
        assert [m.subscriber_id for m in await outbox(context)] == [two.id]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([{"email": "ok@example.com"}, {"email": "ok2@example.com"}, {"email": "nope"}], "items[2].email"),
        ([{"email": "ok@example.com"}, {"mail": "x@example.com"}], "items[1].mail"),
        ([{"email": "ok@example.com", "confirmed": "yes"}], "items[0].confirmed"),
        ([{"email": "ok@example.com", "newsletters": ["monthly"]}], "items[0].newsletters[0]"),
        ([{"email": "ok@example.com", "sections": ["Nowhere"]}], "items[0].sections[0]"),
        ([{"email": "ok@example.com\r\nBcc: x@example.org"}], "items[0].email"),
        ([{"email": "ok@example.com", "timezone": "Nowhere/Town"}], "items[0].timezone"),
        ([42], "items[0]"),
        ({"email": "nope"}, "email"),
        ([], "items"),
    ],
)
async def test_any_invalid_item_is_422_naming_it_and_nothing_is_stored(
    client: httpx.AsyncClient,
    context: AppContext,
    admin_headers: dict[str, str],
    payload: object,
    field: str,
) -> None:
    response = await client.post("/api/subscribers", json=payload, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert await nothing_stored(context)


async def test_more_than_1000_items_is_422(
    make_settings: SettingsFactory, admin_headers: dict[str, str]
) -> None:
    # The admin API's body limit (server.max_api_body_bytes, 1 MiB by default) fits 1,000 items.
    settings = make_settings()
    async with serve(settings) as (http, context):
        items = [{"email": f"u{i}@example.com"} for i in range(1001)]
        response = await http.post("/api/subscribers", json=items, headers=admin_headers)
        assert response.status_code == 422 and response.json()["field"] == "items"
        assert await nothing_stored(context)
        accepted = await http.post("/api/subscribers", json=items[:1000], headers=admin_headers)
        assert accepted.status_code == 200 and accepted.json()["added"] == 1000


async def test_skip_invalid_stores_the_valid_items_and_reports_the_others(
    client: httpx.AsyncClient, context: AppContext, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/subscribers?skip_invalid=true",
        json=[{"email": "good@example.com", "confirmed": True}, {"email": "bad"}],
        headers=admin_headers,
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {"email": "good@example.com", "result": "added"}
    assert results[1]["result"] == "invalid" and results[1]["field"] == "items[1].email"
    assert await count(context, Subscriber) == 1


async def test_list_paginates_and_filters_by_status(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    items = [{"email": f"p{i:02}@example.com", "confirmed": i % 2 == 0} for i in range(25)]
    await client.post("/api/subscribers", json=items, headers=admin_headers)
    first = (await client.get("/api/subscribers?per_page=10", headers=admin_headers)).json()
    third = (await client.get("/api/subscribers?per_page=10&page=3", headers=admin_headers)).json()
    assert (first["total"], first["pages"], len(first["items"]), len(third["items"])) == (25, 3, 10, 5)
    assert (
        first["items"][0]["email"] == "p00@example.com" and third["items"][-1]["email"] == "p24@example.com"
    )
    active = (await client.get("/api/subscribers?status=active&per_page=500", headers=admin_headers)).json()
    assert active["total"] == 13 and {i["status"] for i in active["items"]} == {"active"}
    bad = await client.get("/api/subscribers?status=happy", headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["field"] == "status"
    too_many = await client.get("/api/subscribers?per_page=501", headers=admin_headers)
    assert too_many.status_code == 422 and too_many.json()["field"] == "per_page"


async def test_erasure_removes_personal_data_and_keeps_a_hashed_suppression(
    client: httpx.AsyncClient, context: AppContext, settings: Settings, admin_headers: dict[str, str]
) -> None:
    await client.post("/subscribe", json={"email": "Forget.Me@Example.com"}, headers={"User-Agent": "ua/1"})
    stored = await subscriber(context, "forget.me@example.com")
    assert stored is not None
    await client.get(
        Links(settings).confirm(await owner(context, stored.id)).removeprefix(settings.site.base_url)
    )
    now = utcnow()
    async with context.db.session() as session, session.begin():
        edition = Edition(
            newsletter_id="daily", edition_date=date.today(), sequence=0, status="sending",
            since_at=now - timedelta(days=1), cutoff_at=now,
        )  # fmt: skip
        session.add(edition)
        await session.flush()
        session.add(
            Delivery(edition_id=edition.id, subscriber_id=stored.id, status="queued", next_attempt_at=now)
        )
    response = await client.delete("/api/subscribers/forget.me%40example.com", headers=admin_headers)
    assert response.status_code == 204
    erased = await subscriber(context, "forget.me@example.com")
    assert erased is None
    async with context.db.session() as session:
        row = await session.get(Subscriber, stored.id)
        deliveries = (await session.scalars(select(Delivery.status))).all()
    assert row is not None
    assert (row.email, row.email_key, row.timezone, row.status) == (None, None, None, "erased")
    assert await choices(context, stored.id) == {}
    assert deliveries == ["skipped"]
    for event in await events(context):
        assert (event.ip, event.user_agent) == (None, None) or event.kind == "erasure"
        assert "forget" not in (event.detail or "").lower()
    assert [e.kind for e in await events(context)][-1] == "erasure"
    (suppression,) = await all_rows(context, Suppression)
    assert suppression.email_hash == email_hash("forget.me@example.com") and suppression.reason == "erased"
    listed = (await client.get("/api/subscribers", headers=admin_headers)).json()
    assert listed["total"] == 0
    again = await client.delete("/api/subscribers/forget.me@example.com", headers=admin_headers)
    assert again.status_code == 404


async def test_erased_addresses_are_refused_by_imports_but_a_readers_own_signup_lifts_it(
    make_settings: SettingsFactory, admin_headers: dict[str, str]
) -> None:
    settings = make_settings(subscriptions={"double_opt_in": False})
    async with serve(settings) as (http, context):
        await http.post(
            "/api/subscribers", json={"email": "x@example.com", "confirmed": True}, headers=admin_headers
        )
        assert (await http.delete("/api/subscribers/x@example.com", headers=admin_headers)).status_code == 204
        refused = await http.post(
            "/api/subscribers", json={"email": "X@example.com", "confirmed": True}, headers=admin_headers
        )
        assert refused.json()["results"][0]["result"] == "suppressed"
        assert refused.json()["suppressed"] == 1
        # Single opt-in is configured, yet a suppressed address must confirm by email.
        await http.post("/subscribe", json={"email": "x@example.com"})
        back = await subscriber(context, "x@example.com")
        assert back is not None and back.status == "pending"
        assert [m.subscriber_id for m in await outbox(context)] == [back.id]
        confirmed = await http.get(
            Links(settings).confirm(await owner(context, back.id)).removeprefix(settings.site.base_url)
        )
        assert confirmed.status_code == 200
        assert await all_rows(context, Suppression) == []
        readded = await http.post("/api/subscribers", json={"email": "x@example.com"}, headers=admin_headers)
        assert readded.json()["results"][0]["result"] == "updated"


async def test_an_import_cannot_reactivate_someone_who_unsubscribed(
    client: httpx.AsyncClient, context: AppContext, settings: Settings, admin_headers: dict[str, str]
) -> None:
    await client.post(
        "/api/subscribers", json={"email": "no@example.com", "confirmed": True}, headers=admin_headers
    )
    stored = await subscriber(context, "no@example.com")
    assert stored is not None
    await client.post(
        Links(settings).unsubscribe(await owner(context, stored.id)).removeprefix(settings.site.base_url),
        content=b"List-Unsubscribe=One-Click",
    )
    response = await client.post(
        "/api/subscribers", json={"email": "no@example.com", "confirmed": True}, headers=admin_headers
    )
    assert response.json()["results"][0] == {
        "email": "no@example.com",
        "result": "suppressed",
        "reason": "unsubscribed: only the reader can sign up again",
    }
    stored = await subscriber(context, "no@example.com")
    assert stored is not None and stored.status == "unsubscribed"


@pytest.mark.parametrize(("email", "status"), [("unknown@example.com", 404), ("not-an-address", 422)])
async def test_erasing_an_unknown_or_invalid_address(
    client: httpx.AsyncClient, admin_headers: dict[str, str], email: str, status: int
) -> None:
    response = await client.delete(f"/api/subscribers/{email}", headers=admin_headers)
    assert response.status_code == status
    if status == 422:
        assert response.json()["field"] == "email"
