"""The web archive in Chromium, against the real app under uvicorn: the digest's "View in your
browser" link, followed as the email gives it, shows the email's headlines in the email's order;
axe-core finds nothing wrong on an edition, its newsletter's index or /archive, wide or narrow,
light or dark; and the edition reads, links and all, with JavaScript off.

The stories' pictures live on londondaily.example, which does not exist: the browser gets a
one-pixel PNG for them instead, and any other request that would leave loopback is refused and
fails the test."""

from __future__ import annotations

import base64
import email.message
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import lxml.html
import pytest
import uvicorn
from playwright.async_api import Browser, Page, Route, async_playwright

from newsletter.config import Settings
from newsletter.editions.sending import drain
from newsletter.web import create_app
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, axe_or_skip, axe_violations, needs_chromium
from tests.conftest import SettingsFactory
from tests.support.editions import scenario_factory
from tests.support.ports import free_port
from tests.support.smtp import Mailbox

pytestmark = [pytest.mark.browser, needs_chromium]
# Following the email's link runs on each backend; what the pages look like does not depend on it.
one_backend = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NEWSLETTER = {
    "id": "daily",
    "name": "London Daily Briefing",
    "utm_source": "newsletter",
    "utm_medium": "email",
    # Not the stories' own order (newest first) nor alphabetical: the order is the edition's to keep.
    "sections": ["Defence", "World", "Business", "Politics", "Energy"],
}
PUBLISHER = "londondaily.example"
# A PNG of one transparent pixel.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

# True only where scripting is off: then <noscript>'s content parses as elements, not as text.
# (page.evaluate itself goes through the DevTools protocol, which runs even with JavaScript off.)
SCRIPTING_OFF = """() => {
    document.body.insertAdjacentHTML("beforeend", "<noscript><i>off</i></noscript>");
    return document.querySelector("noscript i") !== null;
}"""


@dataclass(frozen=True)
class Published:
    """An edition sent over real SMTP, and the live app serving its archive."""

    settings: Settings
    message: email.message.EmailMessage

    @property
    def base_url(self) -> str:
        return self.settings.site.base_url

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        content: str = part.get_content()
        return content

    @property
    def view_url(self) -> str:
        """The "View in your browser" link of the email's HTML part, as a mail client opens it."""
        body = lxml.html.document_fromstring(self.html)
        [link] = [a.get("href") for a in body.iter("a") if a.text_content().strip() == "View in your browser"]
        return str(link)

    @property
    def headlines(self) -> list[str]:
        """The stories' headlines, lead first, in the email's order."""
        body = lxml.html.document_fromstring(self.html)
        found = body.xpath('//*[contains(@class, "lead-title") or contains(@class, "story-title")]')
        return [" ".join(element.text_content().split()) for element in found]


@contextmanager
def serving(settings: Settings, port: int) -> Iterator[None]:
    """The app under uvicorn on `port`, with its own context (as `newsletter serve` has)."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
async def published(make_settings: SettingsFactory) -> AsyncIterator[Published]:
    """Today's edition sent to two readers, its site's base_url the live app's own address."""
    port = free_port()

    def settings(**sections: object) -> Settings:
        return make_settings(site={"base_url": f"http://127.0.0.1:{port}"}, **sections)

    scenario = scenario_factory(settings)
    async with scenario(Mailbox(), 2, newsletters=[NEWSLETTER]) as s:
        await drain(s.context, editions={s.edition.id})
        [first, *_] = [received.message() for received in s.handler.messages()]
        with serving(s.context.settings, port):
            yield Published(s.context.settings, first)


@dataclass
class Traffic:
    """What the browser asked for beyond loopback: pictures (answered) and anything else (refused)."""

    pictures: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def route(self, route: Route) -> None:
        request = route.request
        host = urlsplit(request.url).hostname
        if host == "127.0.0.1":
            await route.continue_()
        elif host == PUBLISHER and request.resource_type == "image":
            self.pictures.append(request.url)
            await route.fulfill(status=200, content_type="image/png", body=PIXEL)
        else:
            self.refused.append(request.url)
            await route.abort()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, traffic: Traffic, *, width: int = 1000, javascript: bool = True) -> Page:
    context = await browser.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=javascript
    )
    await context.route("**/*", traffic.route)
    return await context.new_page()


async def test_the_emails_link_opens_its_headlines_in_its_order(published: Published) -> None:
    link = published.view_url
    assert link.startswith(f"{published.base_url}/archive/daily/") and "utm_source=newsletter" in link
    emailed = published.headlines
    assert len(emailed) == 6 and emailed != sorted(emailed), emailed
    traffic = Traffic()
    async with chromium() as browser:
        page = await new_page(browser, traffic)
        response = await page.goto(link)
        assert response is not None and response.status == 200
        assert page.url == link  # followed as it is: no redirect
        shown = [
            " ".join(text.split())
            for text in await page.locator("main article :is(h2, h3)").all_inner_texts()
        ]
        title = await page.title()
        lead_loaded = await page.locator("img.lead-image").evaluate("img => img.complete && img.naturalWidth")
    assert shown == emailed
    assert title.startswith(published.message["Subject"])
    assert lead_loaded == 1  # the stand-in picture, not a broken image
    assert traffic.pictures and traffic.refused == []


@one_backend
@pytest.mark.parametrize("width", [1000, 375])
async def test_axe_finds_no_violations_in_the_archive(published: Published, width: int) -> None:
    axe_or_skip()
    base = published.base_url
    pages = {
        "edition": (published.view_url, published.headlines[0]),
        "index": (f"{base}/archive/daily", "London Daily Briefing"),
        "archive": (f"{base}/archive", "Newsletter archive"),
    }
    found: dict[str, list[str]] = {}
    traffic = Traffic()
    async with chromium() as browser:
        page = await new_page(browser, traffic, width=width)
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            for name, (url, heading) in pages.items():
                response = await page.goto(url)
                assert response is not None and response.status == 200, url
                await page.get_by_role("heading", name=heading, exact=True).first.wait_for()
                dark = await page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
                assert dark == (scheme == "dark")
                found[f"{name} at {width}px, {scheme}"] = await axe_violations(page)
    assert len(found) == 6
    violations = {where: lines for where, lines in found.items() if lines}
    assert violations == {}, "\n".join(
        f"{where}:\n  " + "\n  ".join(lines) for where, lines in violations.items()
    )
    assert traffic.refused == []


@one_backend
async def test_the_edition_reads_without_javascript(published: Published) -> None:
    traffic = Traffic()
    async with chromium() as browser:
        page = await new_page(browser, traffic, javascript=False)
        response = await page.goto(published.view_url)
        assert response is not None and response.status == 200
        stories = page.locator("main article")
        shown = []
        for heading in await stories.locator(":is(h2, h3) a").all():
            title = " ".join((await heading.inner_text()).split())
            href = await heading.get_attribute("href")
            more_link = page.get_by_role("link", name=f"Read more: {title}", exact=True)
            shown.append((title, href, await more_link.get_attribute("href")))
        sign_up = await page.get_by_role("link", name="Sign up", exact=True).get_attribute("href")
        more = page.get_by_role("link", name="More editions of London Daily Briefing", exact=True)
        index = await more.get_attribute("href")
        scripting_off = await page.evaluate(SCRIPTING_OFF)
    assert scripting_off, "the page ran with JavaScript on"
    assert [title for title, _, _ in shown] == published.headlines
    for title, href, read_more in shown:
        assert href and href.startswith(f"https://{PUBLISHER}/story/"), title  # the story itself
        assert read_more == href, title
    assert sign_up == f"{published.base_url}/"
    assert index == f"{published.base_url}/archive/daily"
    assert traffic.refused == []
