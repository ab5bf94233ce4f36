"""Errors: the site's own page for a browser, JSON for a program, and the pages' security headers
on both; a bug is a plain 500 that tells the reader nothing of it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.errors import NotFound
from newsletter.web import create_app
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import serve

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
SECURITY_HEADERS = (
    "content-security-policy",
    "referrer-policy",
    "x-content-type-options",
    "x-frame-options",
    "cache-control",
)
SECRET_DETAIL = "database password is hunter2"


def security_headers(response: httpx.Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in SECURITY_HEADERS}


async def signup_headers(http: httpx.AsyncClient) -> dict[str, str | None]:
    headers = security_headers(await http.get("/"))
    assert all(headers.values()), headers
    return headers


def is_error_page(response: httpx.Response, heading: str) -> bool:
    return (
        response.headers["content-type"].startswith("text/html")
        and f"<h1>{heading}</h1>" in response.text
        and "London Daily" in response.text
        and 'href="/"' in response.text
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "heading", "allow"),
    [
        ("GET", "/no-such-page", 404, "Page not found", None),
        ("GET", "/confirm/abc.def/", 404, "Page not found", None),
        ("GET", "/subscribe", 405, "Nothing to see here", "POST"),
        ("DELETE", "/", 405, "Nothing to see here", "GET"),
    ],
)
async def test_a_browser_gets_the_sites_error_page_with_the_pages_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int, heading: str, allow: str | None
) -> None:
    response = await client.request(method, path, headers=BROWSER)
    assert response.status_code == status
    assert is_error_page(response, heading), response.text[:300]
    assert security_headers(response) == await signup_headers(client)
    assert response.headers.get("allow") == allow


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/api/no-such-thing", BROWSER, 404),
        ("PUT", "/api/editions", BROWSER, 405),
        ("POST", "/healthz", BROWSER, 405),
        ("GET", "/no-such-page", JSON, 404),
        ("GET", "/subscribe", JSON, 405),
        ("GET", "/api/editions", BROWSER, 401),
    ],
)
async def test_programs_get_json_with_the_pages_headers(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    response = await client.request(method, path, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
    assert security_headers(response) == await signup_headers(client)
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


async def test_metrics_switched_off_is_a_json_404(make_settings: SettingsFactory) -> None:
    async with serve(make_settings(server={"metrics": "off"})) as (http, _):
        response = await http.get("/metrics", headers=BROWSER)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_missing_record_keeps_its_json_answer(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get("/api/editions/999999", headers={**admin_headers, **BROWSER})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("not found: ")
    assert security_headers(response) == await signup_headers(client)


@pytest.fixture
async def faulty(settings: Settings, context: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    """The app with routes that hit a missing record and a bug, on a page path and an API path."""
    app = create_app(settings, context)
    add_faulty_routes(app)
    # As a server would: the client gets the 500 answer, the exception goes to the server's log.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def add_faulty_routes(app: FastAPI) -> None:
    async def missing() -> None:
        raise NotFound("edition 7")

    async def broken() -> None:
        raise RuntimeError(SECRET_DETAIL)

    for prefix in ("", "/api"):
        app.add_api_route(f"{prefix}/test/missing", missing)
        app.add_api_route(f"{prefix}/test/broken", broken)


async def test_a_missing_record_on_a_page_is_the_404_page(faulty: httpx.AsyncClient) -> None:
    response = await faulty.get("/test/missing", headers=BROWSER)
    assert response.status_code == 404 and is_error_page(response, "Page not found")
    assert security_headers(response) == await signup_headers(faulty)
    as_json = await faulty.get("/test/missing", headers=JSON)
    assert as_json.json() == {"detail": "not found: edition 7"}


async def test_a_bug_is_a_plain_500_page_that_leaks_nothing(
    faulty: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="newsletter")
    response = await faulty.get("/test/broken", headers=BROWSER)
    assert response.status_code == 500
    assert is_error_page(response, "Something went wrong")
    assert security_headers(response) == await signup_headers(faulty)
    for secret in (SECRET_DETAIL, "RuntimeError", "Traceback"):
        assert secret not in response.text
    logged = [r for r in caplog.records if r.getMessage() == "web.unhandled_error"]
    assert [getattr(r, "event_fields", {}).get("error") for r in logged] == ["RuntimeError"]


@pytest.mark.parametrize(("path", "headers"), [("/api/test/broken", BROWSER), ("/test/broken", JSON)])
async def test_a_bug_answers_a_program_in_json(
    faulty: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await faulty.get(path, headers=headers)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert security_headers(response) == await signup_headers(faulty)
