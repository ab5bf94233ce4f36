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
