"""Script payloads from a feed are inert: what ingestion stores runs nothing in a real browser."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, sync_playwright

from newsletter.articles.entries import FeedSource, articles_from_feed
from newsletter.articles.inputs import ArticleRules
from newsletter.articles.parse import parse_feed
from tests.articles.feeds import rss, rss_item

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

PAYLOADS = [
    "<script>window.pwned = 1</script>",
    '<img src="x" onerror="window.pwned = 2">',
    "<svg><script>window.pwned = 3</script></svg>",
    '<svg onload="window.pwned = 4"></svg>',
    '<a id="js" href="javascript:window.pwned = 5">click</a>',
    '<a href="  JaVaScRiPt:window.pwned = 6">click</a>',
    '<a href="jav&#x09;ascript:window.pwned = 7">click</a>',
    '<iframe srcdoc="&lt;script&gt;parent.pwned = 8&lt;/script&gt;"></iframe>',
    '<math><mtext><table><mglyph><style><img src=x onerror="window.pwned = 9">',
    '<noscript><p title="</noscript><img src=x onerror=window.pwned=10>">',
    '<form><button formaction="javascript:window.pwned = 11">go</button></form>',
    '<details open ontoggle="window.pwned = 12"><summary>x</summary></details>',
    '<object data="javascript:window.pwned = 13"></object>',
    '<a href="data:text/html,&lt;script&gt;parent.pwned = 14&lt;/script&gt;">data</a>',
    '<b style="background:url(javascript:window.pwned = 15)">styled</b>',
    "<!--<img src=x onerror=window.pwned=16>-->",
    "&lt;img src=x onerror=window.pwned=17&gt;",
    '<embed src="javascript:window.pwned = 18">',
    '<input autofocus onfocus="window.pwned = 19">',
    '<marquee onstart="window.pwned = 20">m</marquee>',
]


def ingested_fragments() -> list[str]:
    """Every payload as a summary (and one as a title) through the real parse and clean path."""
    items = [
        rss_item(f"Story {n}", f"https://news.example/{n}", description=p) for n, p in enumerate(PAYLOADS)
    ]
    items.append(rss_item('<img src=x onerror="window.pwned = 99">Title', "https://news.example/t"))
    parsed = parse_feed(rss(*items))
    batch = articles_from_feed(parsed, FeedSource("f", None), ArticleRules(), datetime.now(UTC))
    assert len(batch.articles) == len(items)
    # Summaries are safe HTML (shown as they are); titles are text (escaped, as templates do).
    return [f"<h2>{html.escape(a.title)}</h2><div>{a.summary}</div>" for a in batch.articles]


def pwned_after_loading(browser: Browser, body: str, dialogs: list[str]) -> object:
    """Load `body` in a fresh page (no network), click every link and button, read window.pwned."""
    page = browser.new_page()
    page.route("**/*", lambda route: route.abort())

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.set_content(f"<!doctype html><html><body>{body}</body></html>")
    page.wait_for_load_state("load")
    for link in page.locator("a, button, summary").all():
        link.click(no_wait_after=True, timeout=2000)
    page.wait_for_timeout(50)  # let any handler queued by the clicks run before looking
    pwned = page.evaluate("window.pwned")
    page.close()
    return pwned


def test_feed_payloads_run_nothing_in_chromium() -> None:
    fragments = ingested_fragments()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            dialogs: list[str] = []
            # The harness can tell: the raw payloads do run.
            assert pwned_after_loading(browser, "".join(PAYLOADS), dialogs) is not None
            assert pwned_after_loading(browser, "".join(fragments), dialogs) is None
            assert dialogs == []
        finally:
            browser.close()
