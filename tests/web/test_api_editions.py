"""Admin API for editions: start (202 with its id), progress, dry run, resume, cancel."""

from __future__ import annotations

import httpx

from newsletter.context import AppContext
from newsletter.editions.sending import build_pending, drain
from tests.support.factories import add_articles, add_subscribers
from tests.support.smtp import SmtpServer


async def test_start_an_edition_and_watch_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], context: AppContext, smtp_server: SmtpServer
) -> None:
    await add_articles(context, 4)
    await add_subscribers(context, 9)
    started = await client.post("/api/editions", json={"newsletter": "daily"}, headers=admin_headers)
    assert started.status_code == 202
    edition_id = started.json()["id"]
    assert started.headers["location"] == f"/api/editions/{edition_id}"
    # The request records the intent; a worker builds and sends it.
    assert started.json()["status"] == "building"
    assert (await build_pending(context)) == [edition_id]
    built = (await client.get(f"/api/editions/{edition_id}", headers=admin_headers)).json()
    assert built["status"] == "sending" and built["total"] == 9
    await drain(context, editions={edition_id})
    done = (await client.get(f"/api/editions/{edition_id}", headers=admin_headers)).json()
    assert done["status"] == "done" and done["counts"]["sent"] == 9
    again = await client.post("/api/editions", json={}, headers=admin_headers)
    assert again.status_code == 202 and again.json()["id"] == edition_id and again.json()["created"] is False
    listed = (await client.get("/api/editions", headers=admin_headers)).json()
    assert [e["id"] for e in listed] == [edition_id]


async def test_dry_run_records_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], context: AppContext
) -> None:
    await add_articles(context, 2)
    await add_subscribers(context, 3)
    response = await client.post("/api/editions", json={"dry_run": True}, headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["variants"][0]["recipients"] == 3
    assert (await client.get("/api/editions", headers=admin_headers)).json() == []


async def test_bad_requests(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    unknown = await client.post("/api/editions", json={"newsletter": "weekly"}, headers=admin_headers)
    assert unknown.status_code == 422 and unknown.json()["field"] == "newsletter"
    extra = await client.post(
        "/api/editions", json={"newsletter": "daily", "bogus": 1}, headers=admin_headers
    )
    assert extra.status_code == 422 and extra.json()["field"] == "bogus"
    missing = await client.get("/api/editions/404", headers=admin_headers)
    assert missing.status_code == 404
    assert (await client.post("/api/editions", json={})).status_code == 401


async def test_cancel_and_resume(
    client: httpx.AsyncClient, admin_headers: dict[str, str], context: AppContext
) -> None:
    await add_articles(context, 2)
    await add_subscribers(context, 4)
    edition_id = (await client.post("/api/editions", json={}, headers=admin_headers)).json()["id"]
    await build_pending(context)
    not_paused = await client.post(f"/api/editions/{edition_id}/resume", headers=admin_headers)
    assert not_paused.status_code == 422
    cancelled = await client.post(f"/api/editions/{edition_id}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200 and cancelled.json()["counts"]["skipped"] == 4


async def test_an_edition_recorded_by_the_api_is_built_and_sent_by_a_worker(
    client: httpx.AsyncClient, admin_headers: dict[str, str], context: AppContext, smtp_server: SmtpServer
) -> None:
    await add_articles(context, 2)
    await add_subscribers(context, 5)
    edition_id = (await client.post("/api/editions", json={}, headers=admin_headers)).json()["id"]
    await drain(context, editions={edition_id})
    done = (await client.get(f"/api/editions/{edition_id}", headers=admin_headers)).json()
    assert done["status"] == "done" and done["counts"]["sent"] == 5
    assert smtp_server.handler.count() == 5
