"""The links in emails, through HTTP: confirm, unsubscribe (page and RFC 8058 one-click), token abuse."""

from __future__ import annotations

import json
import logging
import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition, Message, utcnow
from newsletter.personal.links import Links
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import (
    choices,
    confirm_token_signed_at,
    events,
    owner,
    serve,
    subscriber,
)
from tests.web.test_pages_signup import TWO_NEWSLETTERS

ONE_CLICK: dict[str, Any] = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"content-type": "application/x-www-form-urlencoded"},
}


async def signed_up(http: httpx.AsyncClient, context: AppContext, email: str = "reader@example.com") -> int:
    response = await http.post("/subscribe", json={"email": email}, headers={"User-Agent": "test-browser/1"})
    assert response.status_code == 202
    stored = await subscriber(context, email.lower())
    assert stored is not None
    return stored.id


async def active(http: httpx.AsyncClient, context: AppContext, settings: Settings, email: str) -> int:
    subscriber_id = await signed_up(http, context, email)
    confirmed = await http.get(
        Links(settings).confirm(await owner(context, subscriber_id)).removeprefix(settings.site.base_url)
    )
    assert confirmed.status_code == 200
    return subscriber_id


def path(url: str, settings: Settings) -> str:
    return url.removeprefix(settings.site.base_url)


async def test_confirm_activates_and_records_consent(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    subscriber_id = await signed_up(client, context)
    response = await client.get(
        path(Links(settings).confirm(await owner(context, subscriber_id), "daily"), settings),
        headers={"User-Agent": "mail-app/2"},
    )
    assert response.status_code == 200
    assert "You are subscribed" in response.text
    assert "/preferences/" in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    stored = await subscriber(context, "reader@example.com")
    assert stored is not None and stored.status == "active" and stored.confirmed_at is not None
    (confirm,) = await events(context, "confirm")
    assert (confirm.ip, confirm.user_agent) == ("203.0.113.7", "mail-app/2")
    again = await client.get(path(Links(settings).confirm(await owner(context, subscriber_id)), settings))
    assert again.status_code == 200 and "already subscribed" in again.text
    assert len(await events(context, "confirm")) == 1


async def test_an_expired_confirm_link_offers_to_sign_up_again(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    subscriber_id = await signed_up(client, context)
    token = confirm_token_signed_at(await owner(context, subscriber_id), seconds_ago=8 * 86400)
    response = await client.get(f"/confirm/{token}")
    assert response.status_code == 400
    assert "expired" in response.text and 'href="/"' in response.text
    stored = await subscriber(context, "reader@example.com")
    assert stored is not None and stored.status == "pending"


async def test_a_confirm_link_is_no_longer_valid_after_unsubscribing(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    subscriber_id = await active(client, context, settings, "gone@example.com")
    old = confirm_token_signed_at(await owner(context, subscriber_id), seconds_ago=3600)
    assert (
        await client.post(
            path(Links(settings).unsubscribe(await owner(context, subscriber_id)), settings), **ONE_CLICK
        )
    ).status_code == 200
    replay = await client.get(f"/confirm/{old}")
    assert replay.status_code == 400 and "no longer valid" in replay.text
    # Signing up again starts over; the old link (signed before the "no") still cannot confirm.
    await client.post("/subscribe", json={"email": "gone@example.com"})
    assert (await client.get(f"/confirm/{old}")).status_code == 400
    stored = await subscriber(context, "gone@example.com")
    assert stored is not None and stored.status == "pending"
    fresh = await client.get(path(Links(settings).confirm(await owner(context, subscriber_id)), settings))
    assert fresh.status_code == 200
    stored = await subscriber(context, "gone@example.com")
    assert stored is not None and stored.status == "active"


def forged(token: str) -> str:
    """Another subscriber's id under this token's signature."""
    subscriber_id, _, rest = token.partition(".")
    return f"{int(subscriber_id) + 1}.{rest}"


def resigned(token: str) -> str:
    """One character of the signature changed (in the middle: base64's last one may be padding)."""
    middle = len(token) - 10
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.parametrize("route", ["confirm", "unsubscribe", "preferences"])
@pytest.mark.parametrize(
    "mangle", ["forged", "bad-signature", "truncated", "cross-purpose", "garbage", "non-ascii", "huge"]
)
async def test_bad_tokens_get_a_clear_400_page_and_change_nothing(
    client: httpx.AsyncClient, context: AppContext, settings: Settings, route: str, mangle: str
) -> None:
    subscriber_id = await signed_up(client, context)
    links = Links(settings)
    genuine = {
        "confirm": links.confirm(await owner(context, subscriber_id)),
        "unsubscribe": links.unsubscribe(await owner(context, subscriber_id)),
        "preferences": links.preferences(await owner(context, subscriber_id)),
    }
    token = genuine[route].rsplit("/", 1)[1]
    other = "preferences" if route != "preferences" else "confirm"
    token = {
        "forged": forged(token),
        "bad-signature": resigned(token),
        "truncated": token[: len(token) // 2],
        "cross-purpose": genuine[other].rsplit("/", 1)[1],
        "garbage": "not-a-token",
        "non-ascii": "%C3%A9t%C3%A9.1.abc",
        "huge": "x" * 5000,
    }[mangle]
    responses = [await client.get(f"/{route}/{token}")]
    if route != "confirm":
        responses.append(await client.post(f"/{route}/{token}", **ONE_CLICK))
    for response in responses:
        assert response.status_code == 400, (route, mangle)
        assert "This link is not valid" in response.text
        assert response.headers["content-type"].startswith("text/html")
    stored = await subscriber(context, "reader@example.com")
    assert stored is not None and stored.status == "pending"
    assert len(await events(context)) == 1


async def test_get_unsubscribe_shows_one_button_and_changes_nothing(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    subscriber_id = await active(client, context, settings, "stay@example.com")
    response = await client.get(
        path(Links(settings).unsubscribe(await owner(context, subscriber_id), "daily"), settings)
    )
    assert response.status_code == 200
    assert response.text.count("<button") == 1
    assert 'method="post"' in response.text and "The Daily Briefing" in response.text
    stored = await subscriber(context, "stay@example.com")
    assert stored is not None and stored.status == "active"
    assert await events(context, "unsubscribe") == []


@pytest.mark.parametrize(
    ("body", "one_click"),
    [
        (ONE_CLICK, True),
        ({"files": {"List-Unsubscribe": (None, "One-Click")}}, True),
        ({"content": b""}, False),
    ],
    ids=["rfc8058-urlencoded", "rfc8058-multipart", "button-without-body"],
)
async def test_post_unsubscribes_at_once_without_cookie_or_csrf_token(
    client: httpx.AsyncClient,
    context: AppContext,
    settings: Settings,
    body: dict[str, object],
    one_click: bool,
) -> None:
    subscriber_id = await active(client, context, settings, "leave@example.com")
    url = path(Links(settings).unsubscribe(await owner(context, subscriber_id)), settings)
    client.cookies.clear()
    response = await client.post(url, **body)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    stored = await subscriber(context, "leave@example.com")
    assert stored is not None and stored.status == "unsubscribed" and stored.unsubscribed_at is not None
    assert await choices(context, subscriber_id) == {}
    (event,) = await events(context, "unsubscribe")
    assert event.ip == "203.0.113.7"
    assert json.loads(event.detail or "{}")["one_click"] is one_click
    again = await client.post(url, **ONE_CLICK)
    assert again.status_code == 200
    assert len(await events(context, "unsubscribe")) == 1


async def test_unsubscribing_from_one_newsletter_keeps_the_other(make_settings: SettingsFactory) -> None:
    settings = make_settings(newsletters=TWO_NEWSLETTERS)
    async with serve(settings) as (http, context):
        response = await http.post(
            "/subscribe", json={"email": "two@example.com", "newsletters": ["daily", "weekly"]}
        )
        assert response.status_code == 202
        stored = await subscriber(context, "two@example.com")
        assert stored is not None
        await http.get(path(Links(settings).confirm(await owner(context, stored.id)), settings))
        await http.post(
            path(Links(settings).unsubscribe(await owner(context, stored.id), "daily"), settings), **ONE_CLICK
        )
        stored = await subscriber(context, "two@example.com")
        assert stored is not None and stored.status == "active"
        assert await choices(context, stored.id) == {"weekly": "[]"}
        await http.post(
            path(Links(settings).unsubscribe(await owner(context, stored.id), "weekly"), settings),
            **ONE_CLICK,
        )
        stored = await subscriber(context, "two@example.com")
        assert stored is not None and stored.status == "unsubscribed"


async def queue_delivery(context: AppContext, subscriber_id: int, newsletter_id: str = "daily") -> int:
    now = utcnow()
    async with context.db.session() as session, session.begin():
        edition = Edition(
            newsletter_id=newsletter_id, edition_date=date.today(), sequence=0, status="sending",
            since_at=now - timedelta(days=1), cutoff_at=now,
        )  # fmt: skip
        session.add(edition)
        await session.flush()
        session.add(
            Delivery(edition_id=edition.id, subscriber_id=subscriber_id, status="queued", next_attempt_at=now)
        )
        return edition.id


async def test_unsubscribing_skips_deliveries_already_queued(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    subscriber_id = await active(client, context, settings, "queued@example.com")
    await queue_delivery(context, subscriber_id)
    await client.post(
        path(Links(settings).unsubscribe(await owner(context, subscriber_id), "daily"), settings), **ONE_CLICK
    )
    async with context.db.session() as session:
        statuses = (await session.scalars(select(Delivery.status))).all()
        messages = (await session.scalars(select(Message.status))).all()
    assert statuses == ["skipped"]
    assert "queued" not in messages


async def test_preferences_show_and_save_choices(make_settings: SettingsFactory) -> None:
    settings = make_settings(newsletters=TWO_NEWSLETTERS)
    async with serve(settings) as (http, context):
        subscriber_id = await active(http, context, settings, "prefs@example.com")
        url = path(Links(settings).preferences(await owner(context, subscriber_id)), settings)
        page = await http.get(url)
        assert page.status_code == 200
        assert "prefs@example.com" in page.text and 'name="sections:daily"' in page.text
        assert re.search(r'value="daily"\s+checked', page.text)
        assert not re.search(r'value="weekly"\s+checked', page.text)
        saved = await http.post(
            url,
            data={
                "newsletters": ["daily", "weekly"],
                "sections:daily": ["World", "Politics"],
                "timezone": "Asia/Tokyo",
                "action": "save",
            },
            headers={"User-Agent": "prefs-browser"},
        )
        assert saved.status_code == 200 and "Your preferences are saved" in saved.text
        assert await choices(context, subscriber_id) == {"daily": '["Politics", "World"]', "weekly": "[]"}
        stored = await subscriber(context, "prefs@example.com")
        assert stored is not None and stored.timezone == "Asia/Tokyo"
        (event,) = await events(context, "preferences")
        assert event.user_agent == "prefs-browser"
        assert json.loads(event.detail or "{}")["newsletters"] == {
            "daily": ["Politics", "World"],
            "weekly": [],
        }


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({"newsletters": ["daily"], "sections:daily": ["Sport"]}, "Sections"),
        ({"newsletters": ["monthly"]}, "Newsletters"),
        ({"newsletters": ["daily"], "timezone": "Mars/Olympus"}, "Timezone"),
        ({"newsletters": ["daily"], "timezone": "Europe/London\r\nX: y"}, "Timezone"),
        ({"newsletters": ["daily"], "email": "other@example.com"}, "Email address"),
    ],
)
async def test_bad_preferences_are_422_and_change_nothing(
    make_settings: SettingsFactory, fields: dict[str, object], label: str
) -> None:
    settings = make_settings(newsletters=TWO_NEWSLETTERS)
    async with serve(settings) as (http, context):
        subscriber_id = await active(http, context, settings, "prefs@example.com")
        before = await choices(context, subscriber_id)
        response = await http.post(
            path(Links(settings).preferences(await owner(context, subscriber_id)), settings), data=fields
        )
        assert response.status_code == 422
        assert f"{label}:" in response.text
        assert await choices(context, subscriber_id) == before
        assert await events(context, "preferences") == []


@pytest.mark.parametrize("fields", [{"action": "unsubscribe", "newsletters": ["daily"]}, {"action": "save"}])
async def test_unsubscribing_from_everything_on_the_preferences_page(
    client: httpx.AsyncClient, context: AppContext, settings: Settings, fields: dict[str, object]
) -> None:
    subscriber_id = await active(client, context, settings, "all@example.com")
    url = path(Links(settings).preferences(await owner(context, subscriber_id)), settings)
    response = await client.post(url, data=fields)
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    stored = await subscriber(context, "all@example.com")
    assert stored is not None and stored.status == "unsubscribed"
    after = await client.get(url)
    assert after.status_code == 400 and "no longer valid" in after.text


async def test_no_token_or_address_reaches_the_logs(
    client: httpx.AsyncClient, context: AppContext, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    subscriber_id = await active(client, context, settings, "secret.reader@example.com")
    links = Links(settings)
    reader = await owner(context, subscriber_id)
    await client.get(path(links.preferences(reader), settings))
    await client.post(path(links.unsubscribe(reader), settings), **ONE_CLICK)
    tokens = [link.rsplit("/", 1)[1] for link in (links.confirm(reader), links.unsubscribe(reader))]
    ours = [record for record in caplog.records if record.name.startswith("newsletter")]
    logged = [record.getMessage() + repr(getattr(record, "event_fields", {})) for record in ours]
    assert any("subscriber.unsubscribed" in line for line in logged)
    for line in logged:
        assert "secret.reader" not in line
        assert not any(token in line for token in tokens)


@pytest.mark.parametrize("route", ["unsubscribe", "preferences"])
async def test_forms_post_to_their_own_page_whatever_the_host_header_says(
    client: httpx.AsyncClient, context: AppContext, settings: Settings, route: str
) -> None:
    subscriber_id = await active(client, context, settings, "forms@example.com")
    links = Links(settings)
    reader = await owner(context, subscriber_id)
    url = path(
        links.unsubscribe(reader, "daily") if route == "unsubscribe" else links.preferences(reader), settings
    )
    pages = [await client.get(url, headers={"Host": "evil.example"})]
    if route == "preferences":
        pages.append(await client.post(url, data={"newsletters": ["daily"], "action": "save"}))
    for page in pages:
        assert page.status_code == 200
        assert re.findall(r'<form method="post" action="([^"]*)"', page.text) == [url]
