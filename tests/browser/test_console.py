"""The operator console in Chromium against the real app under uvicorn: an editor logs in, sends
an edition and watches its progress reach done without reloading, cancels another, previews an
edition and sends a test copy that arrives; axe-core finds nothing wrong on any console page,
wide or narrow; the pages work from the keyboard. Any request that would leave loopback is
refused (the stories' pictures get a one-pixel PNG)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.console import accounts
from newsletter.console.accounts import Role
from newsletter.context import open_context
from newsletter.database.models import Subscriber, utcnow
from newsletter.editions.builder import open_edition
from newsletter.editions.sending import drain
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, axe_or_skip, axe_violations, needs_chromium
from tests.support.factories import add_articles, add_subscribers
from tests.support.smtp import SmtpServer

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    # What the pages do does not depend on the backend (tests/console runs both).
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
PASSWORD = "a long console password"
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass
class Traffic:
    refused: list[str] = field(default_factory=list)

    async def route(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            await route.continue_()
        elif route.request.resource_type == "image":
            await route.fulfill(status=200, content_type="image/png", body=PIXEL)
        else:
            self.refused.append(route.request.url)
            await route.abort()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, traffic: Traffic, width: int = 1000) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 900})
    await context.route("**/*", traffic.route)
    return await context.new_page()


async def prepared(settings: Settings, readers: int = 6) -> None:
    async with open_context(settings) as context:
        await accounts.add(context, "olivia", PASSWORD, Role.OWNER)
        await accounts.add(context, "eddie", PASSWORD, Role.EDITOR)
        await add_articles(context, 6)
        await add_subscribers(context, readers)


async def log_in(page: Page, base: str, name: str) -> None:
    await page.goto(f"{base}/admin")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()


async def test_an_editor_sends_and_watches_cancels_previews_and_tests(
    served: Settings, smtp_server: SmtpServer
) -> None:
    await prepared(served)
    base = str(served.site.base_url).rstrip("/")
    traffic = Traffic()
    async with chromium() as browser:
        page = await new_page(browser, traffic)
        await log_in(page, base, "eddie")
        await page.get_by_role("link", name="Editions", exact=True).click()
        await page.get_by_label("Newsletter").select_option("daily")
        await page.get_by_role("button", name="Send today's edition now").click()
        await expect(page.get_by_role("heading", name=re.compile(r"^Edition #\d+: daily"))).to_be_visible()
        edition_id = int(page.url.rsplit("/", 1)[1])
        status = page.locator('#progress [data-field="status"]')
        await expect(status).to_have_text("building")
        # A worker elsewhere sends it; the page follows without being reloaded.
        async with open_context(served) as context:
            await drain(context, editions={edition_id})
        await expect(status).to_have_text("done", timeout=15_000)
        await expect(page.locator('#progress [data-field="sent"]')).to_have_text("6")
        await expect(page.locator('#progress [data-field="percent"]')).to_have_text("100")
        await expect(page.get_by_text("The edition is done.")).to_be_visible()
        assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1

        # Another edition, cancelled from its page.
        async with open_context(served) as context:
            daily = served.find_newsletter("daily")
            other, _ = await open_edition(context, daily, now=utcnow(), trigger="test", new=True)
        await page.goto(f"{base}/admin/editions/{other.id}")
        await page.get_by_role("button", name="Cancel the rest").click()
        await expect(page.get_by_role("status").filter(has_text="Cancelled.")).to_be_visible()
        await expect(status).to_have_text("cancelled")

        # The first edition's preview, and a test copy of it.
        await page.goto(f"{base}/admin/editions/{edition_id}")
        await page.get_by_role("link", name=re.compile("^Preview each variant")).click()
        frame = page.frame_locator('iframe[title="Variant 1 at phone width"]')
        lead = frame.get_by_role("heading", name="Story number 0: Britain and the big picture")
        await expect(lead).to_be_visible()
        before = smtp_server.handler.count()
        await page.get_by_label("Send a test copy to").fill("proof.reader@example.net")
        await page.get_by_role("button", name="Send test copy").click()
        await expect(page.get_by_text("A test copy went out.")).to_be_visible()
        copies = smtp_server.handler.messages()[before:]
        assert [m.rcpt_tos for m in copies] == [["proof.reader@example.net"]]
        assert b"Story number 0: Britain and the big picture" in copies[0].data
    assert traffic.refused == []


async def test_the_console_works_from_the_keyboard(served: Settings) -> None:
    await prepared(served, readers=1)
    base = str(served.site.base_url).rstrip("/")
    async with chromium() as browser:
        page = await new_page(browser, Traffic())
        await page.goto(f"{base}/admin/login")
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        await page.keyboard.press("Enter")  # to the form, past the header
        await page.keyboard.press("Tab")
        await expect(page.get_by_label("Name")).to_be_focused()
        await page.keyboard.type("olivia")
        await page.keyboard.press("Tab")
        await page.keyboard.type(PASSWORD)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
        for _ in range(3):  # skip link, brand, first nav link
            await page.keyboard.press("Tab")
        await expect(page.get_by_role("link", name="Dashboard", exact=True)).to_be_focused()
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Editions", exact=True)).to_be_visible()


async def test_an_owner_imports_a_file_with_a_bad_row_and_erases_a_reader(
    served: Settings, tmp_path: Path
) -> None:
    await prepared(served, readers=0)
    base = str(served.site.base_url).rstrip("/")
    upload = tmp_path / "readers.csv"
    upload.write_text(CSV_WITH_A_BAD_ROW, encoding="utf-8")
    async with chromium() as browser:
        page = await new_page(browser, Traffic())
        await log_in(page, base, "olivia")
        await page.get_by_role("link", name="Subscribers", exact=True).click()
        await page.get_by_role("link", name=re.compile("^Import")).first.click()
        await page.get_by_label("CSV file", exact=True).set_input_files(str(upload))
        await page.get_by_label("Import the valid rows even if some are not").check()
        await page.get_by_role("button", name="Import file").click()
        # The progress page, then (by itself) the report.
        await expect(page.get_by_text("Imported.")).to_be_visible(timeout=15_000)
        problems = page.get_by_role("table").filter(has_text="Line")
        await expect(problems.get_by_role("row").nth(1)).to_contain_text("3")
        await expect(problems).to_contain_text("not a valid email address")
        # Erase one of the readers just imported.
        await page.goto(f"{base}/admin/subscribers?q=first")
        await page.get_by_role("link", name="first@readers.example").click()
        await page.get_by_role("link", name=re.compile("^Erase")).click()
        await expect(page.get_by_role("heading", name="Erase first@readers.example?")).to_be_visible()
        await page.get_by_role("button", name="Erase first@readers.example").click()  # not ticked: refused
        await expect(page.get_by_role("heading", name="Erase first@readers.example?")).to_be_visible()
        await page.get_by_label("I confirm: erase this reader's personal data for good").check()
        await page.get_by_role("button", name="Erase first@readers.example").click()
        await expect(page.get_by_role("heading", name=re.compile("^Erased subscriber"))).to_be_visible()
    async with open_context(served) as context, context.db.session() as session:
        emails = set((await session.scalars(select(Subscriber.email))).all())
    assert emails == {None, "second@readers.example"}


CONSOLE_PAGES = [
    ("/admin", "Dashboard"),
    ("/admin/editions", "Editions"),
    ("/admin/editions/{edition}", "Edition #{edition}: daily, {date}"),
    ("/admin/editions/{edition}/preview", "Preview of edition #{edition}: daily, {date}"),
    ("/admin/articles", "Articles"),
    ("/admin/subscribers", "Subscribers"),
    ("/admin/subscribers/{reader}", "{email} #{reader}"),
    ("/admin/subscribers/{reader}/erase", "Erase {email}?"),
    ("/admin/subscribers/import", "Import subscribers"),
    ("/admin/bounces", "Bounces and complaints"),
    ("/admin/suppressions", "Suppression list"),
    ("/admin/engagement", "Engagement"),
    ("/admin/engagement/{edition}", "Clicks of edition #{edition}: {name}, {date}"),
    ("/admin/accounts", "Accounts"),
    ("/admin/settings", "Settings"),
    ("/admin/audit", "Audit trail"),
]
CSV_WITH_A_BAD_ROW = (
    "email,newsletters\nfirst@readers.example,daily\nnot-an-address,daily\nsecond@readers.example,daily\n"
)


@pytest.mark.parametrize("width", [1000, 375])
async def test_axe_finds_no_violations_on_any_console_page(served: Settings, width: int) -> None:
    axe_or_skip()
    await prepared(served, readers=3)
    async with open_context(served) as context:
        edition, _ = await open_edition(
            context, served.find_newsletter("daily"), now=utcnow(), trigger="test"
        )
        await drain(context, editions={edition.id})
        async with context.db.session() as session:
            reader = (await session.scalars(select(Subscriber).order_by(Subscriber.id).limit(1))).one()
    base = str(served.site.base_url).rstrip("/")
    found: dict[str, list[str]] = {}
    async with chromium() as browser:
        page = await new_page(browser, Traffic(), width)
        await page.goto(f"{base}/admin/login")
        found["login"] = await axe_violations(page)
        await log_in(page, base, "olivia")
        for path, heading in CONSOLE_PAGES:
            values = {
                "edition": edition.id,
                "date": edition.edition_date.isoformat(),
                "reader": reader.id,
                "email": reader.email,
                "name": served.find_newsletter("daily").name,
            }
            await page.goto(base + path.format(**values))
            await expect(
                page.get_by_role("heading", name=heading.format(**values), exact=True)
            ).to_be_visible()
            found[path] = await axe_violations(page)
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways at {width} px ({overflow} px)"
    assert {name: problems for name, problems in found.items() if problems} == {}
