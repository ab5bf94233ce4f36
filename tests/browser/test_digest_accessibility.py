"""The digest email for screen readers: landmarks, alt texts that say something once, and
axe-core in chromium finding nothing wrong with it, wide or narrow."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest
from playwright.async_api import Route, async_playwright

from newsletter.config import load_settings
from newsletter.rendering import DigestRenderer
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, axe_or_skip, axe_violations, needs_chromium
from tests.rendering.articles import EDITION_DATE, stories
from tests.rendering.conftest import DIGEST_VALUES, SECRET

PICTURE = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 9"><rect width="16" height="9"/></svg>'


@pytest.fixture
def digest(tmp_path: Path) -> str:
    """Today's digest of the rendering tests' stories, as a reader's copy."""
    empty = tmp_path / "empty.toml"
    empty.touch()
    settings = load_settings(
        empty,
        overrides={
            "site": {"base_url": "https://londondaily.example", "postal_address": "1 Example Street, London"},
            "database": {"url": f"sqlite:///{tmp_path / 'unused.db'}"},
            "security": {"secret_key": SECRET, "admin_token": "digest-a11y-admin-token"},
            "newsletters": [{"id": "daily", "name": "The Daily Briefing"}],
        },
    )
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, stories())
    return rendered.filled_html(DIGEST_VALUES)


def test_thumbnails_are_decorative_and_the_lead_picture_is_described(digest: str) -> None:
    body = lxml.html.document_fromstring(digest).body
    (lead,) = body.find_class("lead-image")
    assert lead.get("alt") == stories()[0].title
    thumbs = body.find_class("thumb")
    assert thumbs, "the stories include one with a picture"
    for thumb in thumbs:
        assert thumb.get("alt") == ""
        link = thumb.getparent()
        # The headline beside it already links there: the picture's link is hidden, not read twice.
        assert (link.tag, link.get("aria-hidden"), link.get("tabindex")) == ("a", "true", "-1")


def test_the_stories_are_in_one_main_landmark_between_banner_and_contentinfo(digest: str) -> None:
    body = lxml.html.document_fromstring(digest).body
    (main,) = body.xpath('//*[@role="main"]')
    titles = [h.text_content() for h in main.find_class("lead-title") + main.find_class("story-title")]
    assert sorted(titles) == sorted(story.title for story in stories())
    (banner,) = body.xpath('//*[@role="banner"]')
    assert "London Daily" in banner.text_content()
    (footer,) = body.xpath('//*[@role="contentinfo"]')
    assert "Unsubscribe" in footer.text_content()


async def serve_pictures(route: Route) -> None:
    # The articles' pictures live on the public internet, which tests cannot reach.
    await route.fulfill(status=200, content_type="image/svg+xml", body=PICTURE)


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("width", [1000, 375])
async def test_axe_finds_no_violations_in_the_digest(digest: str, tmp_path: Path, width: int) -> None:
    axe_or_skip()
    page_file = tmp_path / "digest.html"
    page_file.write_text(digest, encoding="utf-8")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.route("http*://**/*", serve_pictures)
            await page.goto(page_file.as_uri())
            found = await axe_violations(page)
        finally:
            await browser.close()
    assert found == []
