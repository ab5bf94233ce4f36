"""A reader in a real browser: signs up, confirms from the email, then leaves in one click (RFC 8058).

The app runs under uvicorn on a free port, mail goes to an aiosmtpd server, and Playwright drives
Debian's chromium (`sudo apt-get install chromium`; `.ci/run` installs it).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.context import open_context
from newsletter.database.models import Article, Subscriber, utcnow
from newsletter.editions.sending import drain
from newsletter.editions.service import start_edition
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.browser, needs_chromium]


async def deliver_outbox(settings: Settings) -> None:
    async with open_context(settings) as context:
        await drain(context)


async def send_digest(settings: Settings) -> None:
    """Today's edition of the first newsletter, with one fresh article, delivered now."""
    async with open_context(settings) as context:
        async with context.db.session() as session, session.begin():
            session.add(
                Article(
                    canonical_url="https://londondaily.example/world/uk-japan",
                    url="https://londondaily.example/world/uk-japan",
                    title="UK and Japan sign military agreement amid Russia concerns",
                    summary="The agreement is the first of its kind between Japan and a European country.",
                    section="World",
                    published_at=utcnow() - timedelta(hours=1),
                    content_hash="0" * 64,
                )
            )
        edition = await start_edition(context, None)
        await drain(context, editions={edition.id})


async def status_of(settings: Settings, email_key: str) -> tuple[str, str | None]:
    async with open_context(settings) as context, context.db.session() as session:
        row = (await session.execute(
            select(Subscriber.status, Subscriber.timezone).where(Subscriber.email_key == email_key)
        )).one()  # fmt: skip
        return row.status, row.timezone


async def test_sign_up_confirm_and_one_click_unsubscribe(served: Settings, smtp_server: SmtpServer) -> None:
    from playwright.async_api import async_playwright

    base = served.site.base_url
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{base}/")
            assert "London Daily" in await page.title()
            await page.keyboard.press("Tab")  # the masthead link, then the address field
            await page.keyboard.press("Tab")
            focused = await page.evaluate(
                "[document.activeElement.id, getComputedStyle(document.activeElement).outlineStyle]"
            )
            assert focused == ["email", "solid"]
            await page.get_by_label("Email address").fill("browser.reader@example.com")
            await page.get_by_label("World").check()
            await page.get_by_role("button", name="Subscribe").click()
            await page.wait_for_selector("text=Check your inbox")
            browser_zone = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")

            await deliver_outbox(served)
            (confirmation,) = smtp_server.handler.messages()
            text = confirmation.message().get_body(("plain",))
            assert text is not None
            link = re.search(rf"{re.escape(base)}/confirm/\S+", text.get_content())
            assert link is not None, "no confirm link in the email"
            await page.goto(link.group(0))
            assert await page.get_by_role("heading", name="You are subscribed").is_visible()
            assert await status_of(served, "browser.reader@example.com") == ("active", browser_zone)

            await send_digest(served)
            digest = smtp_server.handler.messages()[-1].message()
            assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            header = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>", str(digest["List-Unsubscribe"]))
            assert header is not None and header.group(1).startswith(base)
            # What a mail provider does (RFC 8058): a POST with no cookie and no page visited.
            api = await playwright.request.new_context()
            response = await api.post(header.group(1), form={"List-Unsubscribe": "One-Click"})
            assert response.status == 200
            await api.dispose()
        finally:
            await browser.close()
    assert (await status_of(served, "browser.reader@example.com"))[0] == "unsubscribed"
