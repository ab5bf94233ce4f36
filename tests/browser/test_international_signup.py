"""In chromium, the signup form takes the international addresses the server takes (a field of
type=email refused them before sending), and shows the server's reason beside the field when
it refuses one: what the reader typed kept, the field marked invalid, axe finding nothing."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, async_playwright

from newsletter.config import Settings
from newsletter.context import open_context
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, axe_or_skip, axe_violations, needs_chromium
from tests.subscriptions.helpers import subscriber

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
INTERNATIONAL = ["jürgen@example.de", "用户@例子.广告"]


async def sign_up(page: Page, base: str, address: str) -> None:
    await page.goto(f"{base}/")
    await page.get_by_label("Email address").fill(address)
    await page.get_by_role("button", name="Subscribe").click()


async def stored(settings: Settings, address: str) -> bool:
    async with open_context(settings) as context:
        return await subscriber(context, address) is not None


async def test_international_addresses_get_the_same_check_your_inbox_page(served: Settings) -> None:
    base = served.site.base_url
    pages: dict[str, str] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            for address in ["ascii.reader@example.com", *INTERNATIONAL]:
                await sign_up(page, base, address)
                await page.get_by_role("heading", name="Check your inbox").wait_for()
                pages[address] = await page.locator("main").inner_text()
        finally:
            await browser.close()
    assert len(set(pages.values())) == 1
    for address in INTERNATIONAL:
        assert await stored(served, address), address


async def test_a_malformed_address_shows_the_servers_message_beside_the_field(served: Settings) -> None:
    axe_or_skip()
    typed = "jürgen@@example.de"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await sign_up(page, served.site.base_url, typed)
            await page.get_by_role("alert").wait_for()
            field = page.get_by_label("Email address")
            shown = await field.evaluate(
                """field => [
                    field.value, field.getAttribute('aria-invalid'), document.activeElement === field,
                    document.getElementById(field.getAttribute('aria-describedby')).textContent,
                ]"""
            )
            violations = await axe_violations(page)
        finally:
            await browser.close()
    value, invalid, focused, message = shown
    assert (value, invalid, focused) == (typed, "true", True)
    assert message.startswith("Error: Not a valid email address") and "@" in message
    assert violations == []
    assert not await stored(served, typed)
