"""Swagger UI and ReDoc render the API in chromium with nothing fetched beyond the app itself:
every request to another host is refused and recorded, and the page must not make one."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Request, Route, async_playwright

from newsletter.config import Settings
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.conftest import ADMIN_TOKEN

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
# An operation of each API router, as both viewers title it.
# ReDoc's sidebar credits Redocly with a logo from their CDN, which the page's policy blocks
# before any request leaves (the image then hides itself): the one error the console may show.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
OPERATIONS = ["Recent articles, newest first", "List", "Start"]


async def open_offline(page: Page, url: str) -> tuple[list[str], list[str]]:
    """Open `url`, refusing every request that leaves loopback; (requests refused, console errors)."""
    refused: list[str] = []
    errors: list[str] = []

    async def only_loopback(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOOPBACK or request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            refused.append(request.url)
            await route.abort()

    await page.route("**/*", only_loopback)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await page.goto(url)
    return refused, errors


async def test_swagger_ui_lists_the_operations_offline(served: Settings) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            page = await context.new_page()
            refused, errors = await open_offline(page, f"{served.site.base_url}/api/docs")
            await page.locator(".opblock").first.wait_for()
            paths = await page.locator(".opblock-summary-path").all_inner_texts()
            summaries = await page.locator(".opblock-summary-description").all_inner_texts()
            await page.wait_for_load_state("networkidle")
        finally:
            await browser.close()
    assert {"/api/articles", "/api/subscribers", "/api/editions"} <= {p.strip() for p in paths}
    assert set(OPERATIONS) <= {s.strip() for s in summaries}
    assert refused == []
    assert errors == []


async def test_redoc_shows_the_operations_offline(served: Settings) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            page = await context.new_page()
            refused, errors = await open_offline(page, f"{served.site.base_url}/api/redoc")
            for operation in OPERATIONS:
                await page.get_by_role("heading", name=operation).first.wait_for()
            await page.wait_for_load_state("networkidle")
        finally:
            await browser.close()
    assert refused == []
    assert [error for error in errors if REDOCLY_LOGO not in error] == []
