"""POST and GET /api/articles: admin token, validation naming the field, the same de-duplication."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from newsletter.context import AppContext, open_context
from newsletter.web import create_app
from tests.articles.helpers import stored_articles
from tests.conftest import SettingsFactory


@pytest.fixture
async def api_context(make_settings: SettingsFactory) -> AsyncIterator[AppContext]:
    settings = make_settings(server={"max_body_bytes": 2_000_000}, site={"sections": ["World", "Politics"]})
    async with open_context(settings) as context:
        yield context


@pytest.fixture
async def api(api_context: AppContext, admin_headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_context.settings, api_context)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=admin_headers
    ) as http:
        yield http


def story(n: int, **fields: Any) -> dict[str, Any]:
    return {"title": f"Story {n}", "url": f"https://news.example/{n}", **fields}


async def test_admin_token_is_required(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/articles", json=story(1))).status_code == 401
    assert (await client.get("/api/articles")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.post("/api/articles", json=story(1), headers=wrong)).status_code == 401


async def test_push_one_then_again(api: httpx.AsyncClient, api_context: AppContext) -> None:
    body = story(
        1,
        summary='<p>Big <b>news</b><script>x()</script> <a href="/more" onclick="y()">more</a></p>',
        section="world",
        image_url="https://img.example/1.jpg",
        published_at="2026-03-07T10:00:00+01:00",
        author="Ann Editor",
    )
    first = await api.post("/api/articles", json=body)
    assert first.status_code == 200
    assert first.json()["new"] == 1 and len(first.json()["ids"]) == 1
    again = await api.post("/api/articles", json={**body, "url": "https://NEWS.example/1?utm_source=cms"})
    assert again.json() == {"new": 0, "updated": 1, "unchanged": 0, "ids": first.json()["ids"]}
    [article] = await stored_articles(api_context)
    assert article.section == "World"
    assert (
        article.summary
        == 'Big <b>news</b> <a href="https://news.example/more" rel="noopener noreferrer">more</a>'
    )
    assert article.published_at.isoformat() == "2026-03-07T09:00:00+00:00"


async def test_push_a_list(api: httpx.AsyncClient, api_context: AppContext) -> None:
    response = await api.post("/api/articles", json=[story(n) for n in range(3)] + [story(0)])
    assert response.status_code == 200
    counts = response.json()
    assert (counts["new"], counts["unchanged"]) == (3, 1) and counts["ids"][0] == counts["ids"][3]
    assert len(await stored_articles(api_context)) == 3


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([story(0), story(1), story(2, url="ftp://x.example/2")], "items[2].url", "absolute http(s) URL"),
        ([story(0), {"url": "https://news.example/9"}], "items[1].title", "Field required"),
        ([story(0, link="https://x.example")], "items[0].link", "unknown field"),
        (story(0, title="   "), "title", "must not be empty"),
        (story(0, published_at="last tuesday"), "published_at", "datetime"),
        (story(0, image_url="javascript:alert(1)"), "image_url", "absolute http(s) URL"),
        (story(0, title="t" * 2001), "title", "at most 2000"),
        ([story(n) for n in range(501)], "items", "at most 500"),
        ([], "items", "empty"),
        (["not an object"], "items[0]", "expected an article object"),
        ("just a string", "body", "expected an article object"),
    ],
)
async def test_invalid_input_is_refused_naming_the_field(
    api: httpx.AsyncClient, api_context: AppContext, body: object, field: str, message: str
) -> None:
    response = await api.post("/api/articles", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert message in response.json()["detail"]
    assert await stored_articles(api_context) == []  # nothing of a refused list is stored


async def test_invalid_json_and_oversized_body(api: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    broken = await api.post(
        "/api/articles", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["field"]) == (422, "body")
    headers = {"Authorization": api.headers["Authorization"]}
    # The admin API's own limit (server.max_api_body_bytes, 1 MiB) is larger than the pages' 16 KB.
    huge = await client.post("/api/articles", json=story(1, summary="x" * 1_100_000), headers=headers)
    assert huge.status_code == 413


async def test_get_filters_by_since_section_and_limit(api: httpx.AsyncClient) -> None:
    items = [
        story(1, section="World", published_at="2026-03-07T08:00:00Z"),
        story(2, section="Politics", published_at="2026-03-07T09:00:00Z"),
        story(3, section="World", published_at="2026-03-07T10:00:00Z"),
    ]
    await api.post("/api/articles", json=items)
    everything = (await api.get("/api/articles")).json()["articles"]
    assert [a["title"] for a in everything] == ["Story 3", "Story 2", "Story 1"]
    world = (await api.get("/api/articles", params={"section": "world"})).json()["articles"]
    assert [a["title"] for a in world] == ["Story 3", "Story 1"]
    recent = (await api.get("/api/articles", params={"since": "2026-03-07T09:00:00", "limit": 1})).json()
    assert [a["title"] for a in recent["articles"]] == ["Story 3"]
    bad = await api.get("/api/articles", params={"since": "soon"})
    assert (bad.status_code, bad.json()["field"]) == (422, "since")
    assert (await api.get("/api/articles", params={"limit": 0})).status_code == 422


async def test_openapi_documents_the_body(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/api/openapi.json")).json()
    body = schema["paths"]["/api/articles"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == 500
    assert "url" in body["oneOf"][0]["required"]
