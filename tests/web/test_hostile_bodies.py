"""Bodies and values that used to reach a 500 (or a traceback on the CLI): JSON nested about a
thousand deep, and moments whose UTC equivalent falls outside the calendar. Each is a 422 naming
the field, or exit 2 with one line, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Article, Subscriber
from tests.support.process import environment_for, newsletter

DEEP_ARRAY = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000
EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1899-12-31T23:59:59Z"]
JSON_ROUTES = ["/api/articles", "/api/subscribers", "/api/editions", "/subscribe"]


async def stored(context: AppContext) -> tuple[int, int]:
    async with context.db.session() as session:
        articles = await session.scalar(select(func.count()).select_from(Article))
        subscribers = await session.scalar(select(func.count()).select_from(Subscriber))
    return int(articles or 0), int(subscribers or 0)


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
async def test_deeply_nested_json_is_422(
    client: httpx.AsyncClient, context: AppContext, admin_headers: dict[str, str], route: str, body: bytes
) -> None:
    headers = {**admin_headers, "content-type": "application/json"}
    response = await client.post(route, content=body, headers=headers)
    assert response.status_code == 422, response.text[:200]
    assert response.json()["field"] == "body" and "nested too deeply" in response.json()["detail"]
    assert await stored(context) == (0, 0)


@pytest.mark.parametrize("moment", EXTREMES)
async def test_moments_out_of_range_are_422(
    client: httpx.AsyncClient, context: AppContext, admin_headers: dict[str, str], moment: str
) -> None:
    article = {"title": "A story", "url": "https://news.example/a", "published_at": moment}
    pushed = await client.post("/api/articles", json=article, headers=admin_headers)
    assert pushed.status_code == 422 and pushed.json()["field"] == "published_at", pushed.text
    listed = await client.get("/api/articles", params={"since": moment}, headers=admin_headers)
    assert listed.status_code == 422 and listed.json()["field"] == "since", listed.text
    assert await stored(context) == (0, 0)


async def test_the_cli_refuses_them_in_one_line(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    env = environment_for(settings)
    for moment in EXTREMES[:2]:
        added = newsletter(
            "articles", "add", "--title", "A story", "--url", "https://news.example/a", "--published", moment,
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert added.returncode == 2 and added.stderr.startswith("error: --published: out of range")
        assert added.stderr.count("\n") == 1, added.stderr
        listed = newsletter("articles", "list", "--since", moment, cwd=tmp_path, env=env)
        assert listed.returncode == 2 and listed.stderr.startswith("error: --since: out of range")
        assert listed.stderr.count("\n") == 1, listed.stderr
    assert await stored(context) == (0, 0)
