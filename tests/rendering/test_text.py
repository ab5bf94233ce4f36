"""The plain-text alternative: readable, every link listed, short lines."""

from __future__ import annotations

import re

from newsletter.config import NewsletterConfig
from newsletter.rendering import DigestRenderer, RenderedEmail
from tests.rendering.articles import EDITION_DATE, article, stories
from tests.rendering.conftest import DIGEST_VALUES, PREFERENCES_URL, UNSUBSCRIBE_URL


def test_lines_fit_78_columns_except_bare_links(rendered: RenderedEmail) -> None:
    text = rendered.filled_text(DIGEST_VALUES)
    long_lines = [line for line in text.splitlines() if len(line) > 78]
    assert all(re.search(r"https?://\S+$", line) for line in long_lines), long_lines


def test_every_article_link_and_personal_link_is_listed(rendered: RenderedEmail) -> None:
    text = rendered.filled_text(DIGEST_VALUES)
    for story in stories():
        assert f"Read more: {story.url}\n" in text
    assert f"Unsubscribe: {UNSUBSCRIBE_URL}\n" in text
    assert f"Manage preferences: {PREFERENCES_URL}\n" in text
    assert "reader@example.com" in text


def test_readable_text_without_markup(rendered: RenderedEmail) -> None:
    text = rendered.text
    assert text.startswith(
        "LONDON DAILY\nFocus on the big picture.\nThe Daily Briefing - Saturday, 7 March 2026\n"
    )
    assert "<p>" not in text and "&amp;" not in text and "&nbsp;" not in text
    assert "“autocratic, coercive\npowers”" in text or "“autocratic, coercive powers”" in text
    assert "\n\nThe agreement is the first of its kind" in text
    assert "\n\n\n" not in text and text.endswith("London\n")
    assert "POLITICS\n" in text and "MORE NEWS\n" in text


def test_long_summaries_are_wrapped(renderer: DigestRenderer, daily: NewsletterConfig) -> None:
    wordy = article("A title", summary="<p>" + "lorem ipsum dolor " * 40 + "</p>")
    text = renderer.render_digest(daily, EDITION_DATE, [wordy]).text
    body = [line for line in text.splitlines() if line.startswith("lorem")]
    assert len(body) > 5 and max(len(line) for line in body) <= 72
