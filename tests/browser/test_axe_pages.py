"""axe-core in chromium finds nothing wrong on any public page, error pages included, wide or
narrow: a reader's whole visit, from signing up to leaving, on the real app under uvicorn."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from playwright.async_api import Page, async_playwright

from newsletter.config import Settings
from newsletter.context import open_context
from newsletter.personal.links import Links
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, axe_or_skip, axe_violations, needs_chromium
from tests.subscriptions.helpers import owner, subscriber

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    # The pages do not depend on the database: one backend is enough.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
READER = "axe.reader@example.com"


@dataclass(frozen=True)
class ReaderLinks:
    confirm: str
    preferences: str
    unsubscribe: str


async def links_of(settings: Settings, email: str) -> ReaderLinks:
    async with open_context(settings) as context:
        stored = await subscriber(context, email)
        assert stored is not None, "the signup was not stored"
        reader = await owner(context, stored.id)
    links = Links(settings)
    return ReaderLinks(links.confirm(reader), links.preferences(reader), links.unsubscribe(reader, "daily"))


async def visit_every_page(page: Page, settings: Settings) -> dict[str, list[str]]:
    """Each public page (reached as a reader reaches it) → what axe-core finds there."""
    base = settings.site.base_url
    found: dict[str, list[str]] = {}

    async def check(name: str, heading: str) -> None:
        await page.get_by_role("heading", name=heading, exact=True).wait_for()
        found[name] = await axe_violations(page)

    await page.goto(f"{base}/")
    await check("signup", "Get London Daily in your inbox")
    await page.get_by_label("Email address").fill(READER)
    await page.get_by_role("button", name="Subscribe").click()
    await check("thanks", "Check your inbox")
    links = await links_of(settings, READER)
    await page.goto(links.confirm)
    await check("confirm", "You are subscribed")
    await page.goto(links.preferences)
    await check("preferences", "Your preferences")
    await page.get_by_role("button", name="Save preferences").click()
    await page.get_by_text("Your preferences are saved").wait_for()
    found["preferences saved"] = await axe_violations(page)
    await page.goto(links.unsubscribe)
    await check("unsubscribe", "Unsubscribe")
    await page.get_by_role("button", name="Unsubscribe").click()
    await check("unsubscribed", "You are unsubscribed")
    for name, path, heading in [
        ("404", "/no-such-page", "Page not found"),
        ("405", "/subscribe", "Nothing to see here"),
        ("bad link", "/confirm/not-a-token", "This link is not valid"),
    ]:
        await page.goto(base + path)
        await check(name, heading)
    return found


@pytest.mark.parametrize("width", [1000, 375])
async def test_axe_finds_no_violations_on_any_public_page(served: Settings, width: int) -> None:
    axe_or_skip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": 900})
            found = await visit_every_page(page, served)
        finally:
            await browser.close()
    assert len(found) == 10
    assert {name: lines for name, lines in found.items() if lines} == {}
