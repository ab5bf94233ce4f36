"""GET / and POST /subscribe through HTTP: double opt-in, no enumeration, bad input, abuse."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser

import httpx
import pytest
from sqlalchemy import update

from newsletter.context import AppContext, open_context
from newsletter.database.models import Subscriber, utcnow
from newsletter.web import create_app
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import (
    choices,
    count,
    events,
    form,
    nothing_stored,
    outbox,
    serve,
    subscriber,
)

TWO_NEWSLETTERS = [
    {"id": "daily", "name": "The Daily Briefing", "sections": ["World", "Politics", "Business"]},
    {"id": "weekly", "name": "The Week in Review", "sections": []},
]


class FormInventory(HTMLParser):
    """The controls of a page and the labels pointing at them, plus anything loaded from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.external: list[str] = []
        self.buttons = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            self.controls.append(attributes)
        if tag == "label" and attributes.get("for"):
            self.labels.add(str(attributes["for"]))
        if tag == "button":
            self.buttons += 1
        for name in ("src", "href"):
            value = attributes.get(name) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)


def inventory(html: str) -> FormInventory:
    parser = FormInventory()
    parser.feed(html)
    return parser


async def test_signup_page_is_in_the_publications_name_and_accessible(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    page = response.text
    assert "London Daily" in page and "Focus on the big picture." in page
    assert '<html lang="en">' in page
    assert 'name="viewport"' in page
    found = inventory(page)
    assert found.external == []
    assert all(control["id"] in found.labels for control in found.controls), found.controls
    assert ":focus-visible" in page
    honeypot = next(c for c in found.controls if c.get("name") == "website")
    assert honeypot["tabindex"] == "-1" and honeypot["autocomplete"] == "off"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_signup_page_offers_newsletters_and_sections(
    make_settings: SettingsFactory, context: AppContext
) -> None:
    async with serve(make_settings(newsletters=TWO_NEWSLETTERS)) as (http, _):
        page = (await http.get("/")).text
    for value in ("daily", "weekly", "World", "Politics", "Business"):
        assert f'value="{value}"' in page
    assert "Choose none and you get The Daily Briefing" in page


async def test_json_signup_is_pending_with_a_confirmation_owed(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    response = await client.post(
        "/subscribe",
        json={"email": "Reader@Example.COM", "timezone": "Europe/Paris"},
        headers={"User-Agent": "Mozilla/5.0 test"},
    )
    assert response.status_code == 202
    assert response.json() == {"status": "pending"}
    stored = await subscriber(context, "reader@example.com")
    assert stored is not None
    assert (stored.email, stored.status, stored.timezone) == ("Reader@example.com", "pending", "Europe/Paris")
    assert stored.confirmation_sent_at is not None
    (message,) = await outbox(context)
    assert (message.kind, message.subscriber_id, message.status) == ("confirmation", stored.id, "queued")
    (signup,) = await events(context, "signup")
    assert (signup.subscriber_id, signup.ip, signup.user_agent) == (
        stored.id,
        "203.0.113.7",
        "Mozilla/5.0 test",
    )
    assert signup.at is not None


async def test_form_signup_gets_the_thank_you_page(
    make_settings: SettingsFactory, context: AppContext
) -> None:
    async with serve(make_settings(site={"sections": ["World", "Politics", "Business"]})) as (http, _):
        response = await http.post(
            "/subscribe", data=form(email="reader@example.com", sections=["World", "Business"])
        )
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    stored = await subscriber(context, "reader@example.com")
    assert stored is not None
    assert await choices(context, stored.id) == {"daily": '["Business", "World"]'}


async def test_the_answer_is_the_same_for_new_pending_and_active_addresses(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    await client.post("/subscribe", json={"email": "known@example.com"})
    async with context.db.session() as session, session.begin():
        await session.execute(update(Subscriber).values(status="active", confirmed_at=utcnow()))
    answers = []
    for email in ("new@example.com", "new@example.com", "known@example.com"):
        json_answer = await client.post("/subscribe", json={"email": email})
        form_answer = await client.post("/subscribe", data=form(email=email))
        answers.append(
            (json_answer.status_code, json_answer.content, form_answer.status_code, form_answer.content)
        )
    assert answers[0] == answers[1] == answers[2]


async def test_an_active_subscribers_choices_cannot_be_changed_by_a_signup(
    make_settings: SettingsFactory, context: AppContext
) -> None:
    async with serve(make_settings(newsletters=TWO_NEWSLETTERS)) as (http, _):
        await http.post("/subscribe", json={"email": "a@example.com", "newsletters": ["daily"]})
        async with context.db.session() as session, session.begin():
            await session.execute(update(Subscriber).values(status="active"))
        await http.post("/subscribe", json={"email": "a@example.com", "newsletters": ["weekly"]})
    stored = await subscriber(context, "a@example.com")
    assert stored is not None and stored.status == "active"
    assert await choices(context, stored.id) == {"daily": "[]"}
    assert [m.kind for m in await outbox(context)] == ["confirmation"]


async def test_pending_resignup_resends_at_most_every_ten_minutes(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    for _ in range(3):
        assert (await client.post("/subscribe", json={"email": "again@example.com"})).status_code == 202
    assert len(await outbox(context)) == 1
    async with context.db.session() as session, session.begin():
        await session.execute(
            update(Subscriber).values(confirmation_sent_at=utcnow() - timedelta(minutes=11))
        )
    await client.post("/subscribe", json={"email": "again@example.com"})
    assert len(await outbox(context)) == 2
    assert len(await events(context, "signup")) == 4


async def test_unsubscribed_resignup_starts_a_fresh_double_opt_in(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    await client.post("/subscribe", json={"email": "back@example.com"})
    async with context.db.session() as session, session.begin():
        await session.execute(
            update(Subscriber).values(
                status="unsubscribed",
                unsubscribed_at=utcnow(),
                confirmation_sent_at=utcnow() - timedelta(days=30),
            )
        )
    await client.post("/subscribe", json={"email": "back@example.com"})
    stored = await subscriber(context, "back@example.com")
    assert stored is not None and stored.status == "pending"
    assert len(await outbox(context)) == 2


async def test_single_opt_in_is_active_at_once_without_email(
    make_settings: SettingsFactory, context: AppContext
) -> None:
    async with serve(make_settings(subscriptions={"double_opt_in": False})) as (http, _):
        response = await http.post("/subscribe", json={"email": "quick@example.com"})
    assert (response.status_code, response.json()) == (202, {"status": "subscribed"})
    stored = await subscriber(context, "quick@example.com")
    assert stored is not None and stored.status == "active" and stored.confirmed_at is not None
    assert await outbox(context) == []


@pytest.mark.parametrize(
    ("email", "stored_email", "key"),
    [
        ("用户@例子.广告", "用户@例子.广告", "用户@例子.广告"),
        ("Bob@BÜCHER.de", "Bob@bücher.de", "bob@bücher.de"),
        ("  padded@example.com ", "padded@example.com", "padded@example.com"),
        ("=cmd|'/Ccalc'!A0@example.com", "=cmd|'/Ccalc'!A0@example.com", "=cmd|'/ccalc'!a0@example.com"),
    ],
)
async def test_addresses_are_normalised(
    client: httpx.AsyncClient, context: AppContext, email: str, stored_email: str, key: str
) -> None:
    assert (await client.post("/subscribe", json={"email": email})).status_code == 202
    stored = await subscriber(context, key)
    assert stored is not None and stored.email == stored_email


async def test_addresses_are_unique_whatever_their_case(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    for email in ("Same@Example.com", "same@example.com", "SAME@EXAMPLE.COM"):
        await client.post("/subscribe", json={"email": email})
    assert await count(context, Subscriber) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": ""}, "email"),
        ({}, "email"),
        ({"email": 42}, "email"),
        ({"email": "bob@example.com\r\nBcc: victim@example.org"}, "email"),
        ({"email": "bob@example.com\nX-Injected: 1"}, "email"),
        ({"email": "a@example.com, b@example.org"}, "email"),
        ({"email": "a@example.com b@example.org"}, "email"),
        ({"email": "a@example.com;b@example.org"}, "email"),
        ({"email": "Bob <bob@example.com>"}, "email"),
        ({"email": "bob\x00@example.com"}, "email"),
        ({"email": "bob@exa\x00mple.com"}, "email"),
        ({"email": "x" * 300 + "@example.com"}, "email"),
        ({"email": "bob@" + "d" * 5000 + ".com"}, "email"),
        ({"email": "bob@localhost"}, "email"),
        ({"email": "b\u202eob@example.com"}, "email"),
        ({"email": "bob@example.com", "newsletters": ["nope"]}, "newsletters[0]"),
        ({"email": "bob@example.com", "newsletters": "daily\r\nX: y"}, "newsletters[0]"),
        ({"email": "bob@example.com", "newsletters": 5}, "newsletters"),
        ({"email": "bob@example.com", "sections": ["Sport"]}, "sections[0]"),
        ({"email": "bob@example.com", "sections": ["World", "x@example.org"]}, "sections[1]"),
        ({"email": "bob@example.com", "timezone": "Europe/London\r\nBcc: x@example.org"}, "timezone"),
        ({"email": "bob@example.com", "cc": "other@example.org"}, "cc"),
    ],
)
async def test_bad_json_input_is_422_naming_the_field_and_stores_nothing(
    make_settings: SettingsFactory, context: AppContext, payload: dict[str, object], field: str
) -> None:
    async with serve(make_settings(site={"sections": ["World", "Politics"]})) as (http, _):
        response = await http.post("/subscribe", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert response.json()["detail"].startswith(f"{field}: ")
    assert await nothing_stored(context)


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b'{"email": "bob@example.com"', "application/json", "body"),
        (b'["bob@example.com"]', "application/json", "body"),
        (b'{"email": "b\xffob@example.com"}', "application/json", "body"),
        (b'{"email": "\\ud800@example.com"}', "application/json", "email"),
        (b'{"email": "a@example.com", "email": "b@example.org"}', "application/json", "email"),
        (b"[" * 5000 + b"]" * 5000, "application/json", "body"),
        (b"email=b\xffob%40example.com", "application/x-www-form-urlencoded", "body"),
        (b"email=b%FFob%40example.com", "application/x-www-form-urlencoded", "email"),
        (
            b"email=bob%40example.com%0D%0ABcc%3A+x%40example.org",
            "application/x-www-form-urlencoded",
            "email",
        ),
        (b"email=a%40example.com&email=b%40example.org", "application/x-www-form-urlencoded", "email"),
        (b"email=bob%40example.com", "text/plain", "body"),
    ],
)
async def test_malformed_bodies_and_mixed_encodings_are_422(
    client: httpx.AsyncClient, context: AppContext, body: bytes, content_type: str, field: str
) -> None:
    response = await client.post("/subscribe", content=body, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    if content_type == "application/json":
        assert response.json()["field"] == field
    else:
        assert "Please check the form" in response.text
    assert await nothing_stored(context)


async def test_a_bad_form_comes_back_with_the_error_and_the_typed_values(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    response = await client.post("/subscribe", data=form(email='bad"><script>alert(1)</script>'))
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "Email address:" in response.text
    assert 'aria-invalid="true"' in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text
    assert await nothing_stored(context)


async def test_a_body_over_16_kb_is_413_and_stores_nothing(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    body = json.dumps({"email": "big@example.com", "sections": ["x" * 17_000]})
    response = await client.post("/subscribe", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert await nothing_stored(context)


async def test_a_filled_honeypot_gets_the_normal_answer_and_stores_nothing(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    real = await client.post("/subscribe", data=form(email="human@example.com"))
    bot = await client.post("/subscribe", data={"email": "bot@example.com", "website": "http://spam.example"})
    bot_json = await client.post("/subscribe", json={"email": "bot@example.com", "website": "x"})
    assert (bot.status_code, bot.content) == (real.status_code, real.content)
    assert (bot_json.status_code, bot_json.json()) == (202, {"status": "pending"})
    assert await subscriber(context, "bot@example.com") is None
    assert await count(context, Subscriber) == 1


async def test_signups_are_rate_limited_per_client_ip(
    make_settings: SettingsFactory, context: AppContext
) -> None:
    settings = make_settings(subscriptions={"rate_limit_per_minute": 3})
    async with open_context(settings) as served:
        app = create_app(settings, served)

        def client_from(ip: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(ip, 1)), base_url="http://t"
            )

        async with client_from("198.51.100.1") as first, client_from("198.51.100.2") as second:
            statuses = [
                (await first.post("/subscribe", json={"email": f"r{i}@example.com"})).status_code
                for i in range(3)
            ]
            limited = await first.post("/subscribe", json={"email": "r9@example.com"})
            limited_form = await first.post("/subscribe", data=form(email="r9@example.com"))
            other = await second.post("/subscribe", json={"email": "s@example.com"})
    assert statuses == [202, 202, 202]
    assert limited.status_code == limited_form.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert int(limited_form.headers["retry-after"]) >= 1
    assert other.status_code == 202
    assert await subscriber(context, "r9@example.com") is None


async def test_the_timezone_script_is_served_from_the_site_itself(client: httpx.AsyncClient) -> None:
    response = await client.get("/assets/timezone.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "Intl.DateTimeFormat" in response.text
    assert "script-src 'self'" in (await client.get("/")).headers["content-security-policy"]


async def test_an_unreachable_database_is_503_with_retry_after_not_500(
    make_settings: SettingsFactory,
) -> None:
    from newsletter.config import DatabaseConfig
    from newsletter.database import open_database

    settings = make_settings()
    broken = AppContext(
        settings, open_database(DatabaseConfig(url="postgresql+psycopg://x@127.0.0.1:1/none"))
    )
    app = create_app(settings, broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        as_json = await http.post(
            "/subscribe", json={"email": "a@example.com"}, headers={"accept": "application/json"}
        )
        as_form = await http.post("/subscribe", data=form(email="a@example.com"))
    await broken.db.dispose()
    assert as_json.status_code == as_form.status_code == 503
    assert as_json.headers["retry-after"] == as_form.headers["retry-after"] == "5"
    assert "try again" in as_form.text
