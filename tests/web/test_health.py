from __future__ import annotations

import httpx
import pytest

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.web import create_app


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


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


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


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/subscribe", content=b"x" * 20_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_metrics_count_messages_after_a_send(
    client: httpx.AsyncClient, context: AppContext, smtp_server: object
) -> None:
    from newsletter.delivery.worker import drain
    from newsletter.editions.service import start_edition
    from tests.support.factories import add_articles, add_subscribers

    await add_articles(context, 2)
    await add_subscribers(context, 3)
    edition = await start_edition(context, "daily")
    await drain(context, editions={edition.id})
    text = (await client.get("/metrics")).text
    for name in (
        'newsletter_messages_total{kind="digest",outcome="sent"}',
        "newsletter_smtp_send_seconds_count",
        'newsletter_smtp_replies_total{code="250"}',
    ):
        assert name in text
