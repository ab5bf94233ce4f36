from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.web import create_app
from tests.conftest import ADMIN_TOKEN, SettingsFactory
from tests.subscriptions.helpers import serve


async def test_healthz_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


async def test_healthz_when_the_database_is_gone(settings: Settings, context: AppContext) -> None:
    from newsletter.config import DatabaseConfig
    from newsletter.database import open_database

    broken = AppContext(
        settings, open_database(DatabaseConfig(url="postgresql+psycopg://x@127.0.0.1:1/none"))
    )
    app = create_app(settings, broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/healthz")
    await broken.db.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_metrics_are_prometheus_text_behind_a_token(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get("/metrics", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and "newsletter_" not in refused.text


async def test_a_metrics_token_reads_metrics_and_nothing_else(make_settings: SettingsFactory) -> None:
    settings = make_settings(security={"metrics_token": "prometheus-scrape-token-42"})
    scraper = {"Authorization": "Bearer prometheus-scrape-token-42"}
    async with serve(settings) as (http, _):
        assert (await http.get("/metrics", headers=scraper)).status_code == 200
        assert (await http.get("/api/subscribers", headers=scraper)).status_code == 401
        assert (await http.get("/api/openapi.json", headers=scraper)).status_code == 401


@pytest.mark.parametrize(("mode", "anonymous"), [("public", 200), ("off", 404)])
async def test_metrics_public_or_off(make_settings: SettingsFactory, mode: str, anonymous: int) -> None:
    async with serve(make_settings(server={"metrics": mode})) as (http, _):
        assert (await http.get("/metrics")).status_code == anonymous


async def test_api_docs_need_the_token_unless_public(
    make_settings: SettingsFactory, admin_headers: dict[str, str]
) -> None:
    async with serve(make_settings()) as (http, _):
        for path in ("/api/openapi.json", "/api/docs"):
            assert (await http.get(path)).status_code == 401
            assert (await http.get(path, headers=admin_headers)).status_code == 200
        assert "/api/articles" in (await http.get("/api/openapi.json", headers=admin_headers)).json()["paths"]
    async with serve(make_settings(server={"public_api_docs": True})) as (http, _):
        assert (await http.get("/api/openapi.json")).status_code == 200
        assert "swagger" in (await http.get("/api/docs")).text.lower()
        assert (await http.get("/api/subscribers")).status_code == 401


async def test_no_redirect_is_built_from_the_host_header(client: httpx.AsyncClient) -> None:
    """Starlette redirected `/confirm/TOKEN/` to `http://<Host header>/confirm/TOKEN`, taking the
    token to whatever host the request named."""
    for path in ("/confirm/abc.def/", "/unsubscribe/abc/", "/api/editions/", "/healthz/"):
        response = await client.get(path, headers={"Host": "evil.example"})
        assert response.status_code in (404, 405), (path, response.status_code)
        assert "location" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
async def test_admin_api_needs_the_token(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/api/editions", headers=headers)
    assert response.status_code == 401


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_body_over_the_limit_is_413_with_the_pages_security_headers(client: httpx.AsyncClient) -> None:
    for streamed in (False, True):
        body = b"x" * 20_000
        content = chunks(body[:10_000], body[10_000:]) if streamed else body  # no Content-Length
        response = await client.post(
            "/subscribe", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert (
            response.headers["x-frame-options"] == "DENY"
            and response.headers["referrer-policy"] == "no-referrer"
        )
        assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_metrics_count_messages_after_a_send(
    client: httpx.AsyncClient, context: AppContext, smtp_server: object
) -> None:
    from newsletter.editions.sending import drain
    from newsletter.editions.service import start_edition
    from tests.support.factories import add_articles, add_subscribers

    await add_articles(context, 2)
    await add_subscribers(context, 3)
    edition = await start_edition(context, "daily")
    await drain(context, editions={edition.id})
    text = (await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).text
    for name in (
        'newsletter_messages_total{kind="digest",outcome="sent"}',
        "newsletter_smtp_send_seconds_count",
        'newsletter_smtp_replies_total{code="250"}',
    ):
        assert name in text
