"""The digest in a real browser (Debian's chromium through Playwright): narrow screens, dark
mode, and hostile feed content that must not run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, sync_playwright

from newsletter.config import NewsletterConfig
from newsletter.rendering import DigestRenderer, RenderedEmail
from tests.rendering.articles import EDITION_DATE, hostile_story, stories
from tests.rendering.conftest import DIGEST_VALUES

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PICTURE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="675">'
    '<rect width="1200" height="675" fill="#789"/></svg>'
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


def serve_pictures(route: Route) -> None:
    # The articles' images live on the public internet, which tests cannot reach.
    if route.request.url.startswith(("http://", "https://")):
        route.fulfill(status=200, content_type="image/svg+xml", body=PICTURE)
    else:
        route.continue_()


def open_page(
    browser: Browser, rendered: RenderedEmail, tmp_path: Path, width: int, scheme: str = "light"
) -> Page:
    path = tmp_path / f"digest-{width}-{scheme}.html"
    path.write_text(rendered.filled_html(DIGEST_VALUES), encoding="utf-8")
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)  # type: ignore[arg-type]
    page.route("**/*", serve_pictures)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def width_of(page: Page, selector: str) -> float:
    return float(page.eval_on_selector(selector, "e => e.getBoundingClientRect().width"))


def style_of(page: Page, selector: str, name: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e)['{name}']"))


def test_desktop_width_keeps_the_600px_column(
    browser: Browser, rendered: RenderedEmail, tmp_path: Path
) -> None:
    page = open_page(browser, rendered, tmp_path, 800)
    assert width_of(page, ".container") == 600
    assert width_of(page, ".lead-image") == 536
    assert width_of(page, ".thumb") == 112
    assert style_of(page, ".lead-title", "fontSize") == "28px"
    page.close()


def test_narrow_screen_fits_without_sideways_scrolling(
    browser: Browser, rendered: RenderedEmail, tmp_path: Path
) -> None:
    page = open_page(browser, rendered, tmp_path, 375)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert width_of(page, ".container") == 375
    assert style_of(page, ".lead-title", "fontSize") == "23px"
    assert width_of(page, ".thumb") == 84
    page.close()


def test_dark_mode_recolours_the_page(browser: Browser, rendered: RenderedEmail, tmp_path: Path) -> None:
    page = open_page(browser, rendered, tmp_path, 600, "dark")
    assert style_of(page, "body", "backgroundColor") == "rgb(18, 18, 18)"
    assert style_of(page, ".container", "backgroundColor") == "rgb(29, 29, 29)"
    assert style_of(page, ".lead-title a", "color") == "rgb(242, 240, 236)"
    page.close()


def test_hostile_content_runs_nothing(
    browser: Browser, renderer: DigestRenderer, daily: NewsletterConfig, tmp_path: Path
) -> None:
    rendered = renderer.render_digest(daily, EDITION_DATE, [hostile_story(), *stories()])
    page = open_page(browser, rendered, tmp_path, 600)
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.reload()
    page.wait_for_load_state("load")
    assert dialogs == []
    assert page.evaluate("document.scripts.length") == 0
    assert "<script>alert(1)</script>" in page.inner_text(".lead-title")
    page.close()
