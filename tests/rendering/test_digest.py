"""The HTML digest: layout, inline styles, absolute links, escaping, UTM, operator templates."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import pytest

from newsletter.config import NewsletterConfig, Settings
from newsletter.rendering import DigestRenderer, RenderedEmail
from newsletter.rendering.placeholders import DIGEST_FIELDS
from tests.rendering.articles import EDITION_DATE, HOSTILE_TITLE, article, hostile_story, stories
from tests.rendering.conftest import DIGEST_VALUES, PREFERENCES_URL, UNSUBSCRIBE_URL, RenderSettings

STYLED_TAGS = {"table", "td", "p", "a", "h1", "h2", "h3", "img", "div"}


def body_of(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html).body


def test_masthead_lead_sections_and_footer(rendered: RenderedEmail) -> None:
    page = lxml.html.document_fromstring(rendered.html)
    assert page.get("lang") == "en"
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert page.findtext(".//title") == "The Daily Briefing: Saturday, 7 March 2026"
    masthead = page.find_class("masthead")[0].text_content()
    assert "London Daily" in masthead and "Focus on the big picture." in masthead
    assert "Saturday, 7 March 2026" in masthead and "The Daily Briefing" in masthead
    lead_image = page.find_class("lead-image")[0]
    assert lead_image.get("alt") == "UK and Japan sign military agreement amid Russia concerns"
    assert lead_image.get("width") == "536"
    assert page.find_class("lead-title")[0].text_content().startswith("UK and Japan")
    headings = [h.text_content() for h in page.find_class("section-heading")]
    assert headings == ["Politics", "Business", "UK", "More news"]
    assert len(page.find_class("story")) + len(page.find_class("story-last")) == 5
    assert len([a for a in page.iter("a") if a.text_content().startswith("Read more")]) == 6
    footer = page.find_class("footer")[0]
    assert "1 Example Street, London" in footer.text_content()
    tokens = rendered.tokens
    hrefs = {a.get("href") for a in footer.iter("a")}
    assert hrefs == {tokens.token("preferences_url"), tokens.token("unsubscribe_url")}


def test_sections_follow_the_configured_order(render_settings: RenderSettings) -> None:
    settings = render_settings(site={"sections": ["UK", "Business", "Politics", "Defence"]})
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, stories())
    page = lxml.html.document_fromstring(rendered.html)
    headings = [h.text_content() for h in page.find_class("section-heading")]
    assert headings == ["UK", "Business", "Politics", "More news"]


def test_hidden_preheader_names_the_lead(rendered: RenderedEmail) -> None:
    preheader = body_of(rendered.html).find_class("preheader")[0]
    assert preheader.text_content().startswith(
        "UK and Japan sign military agreement amid Russia concerns, and 5 more"
    )
    style = preheader.get("style")
    assert "display:none" in style and "mso-hide:all" in style


def test_media_queries_stay_in_head_and_can_win(rendered: RenderedEmail) -> None:
    head = lxml.html.document_fromstring(rendered.html).head
    css = "".join(style.text_content() for style in head.iter("style"))
    assert "@media only screen and (max-width: 520px)" in css
    assert "@media (prefers-color-scheme: dark)" in css
    assert "!important" in css
    assert 'name="color-scheme"' in rendered.html


def test_body_elements_carry_inline_styles(rendered: RenderedEmail) -> None:
    body = body_of(rendered.html)
    assert body.get("style")
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        if element.get("class") or element.tag in STYLED_TAGS:
            assert element.get("style"), lxml.html.tostring(element)[:120]


def test_table_layout_600_wide_with_outlook_ghost_table(rendered: RenderedEmail) -> None:
    container = body_of(rendered.html).find_class("container")[0]
    assert container.tag == "table" and container.get("role") == "presentation"
    assert "max-width:600px" in container.get("style").replace(" ", "")
    assert '<!--[if mso]><table role="presentation" width="600"' in rendered.html


def test_every_link_and_image_is_absolute(rendered: RenderedEmail) -> None:
    body = body_of(rendered.filled_html(DIGEST_VALUES))
    urls = [a.get("href") for a in body.iter("a")] + [img.get("src") for img in body.iter("img")]
    assert len(urls) > 15
    for url in urls:
        assert re.match(r"^https?://[^/\s]+/", url), url


def test_hostile_feed_content_is_inert(renderer: DigestRenderer, daily: NewsletterConfig) -> None:
    rendered = renderer.render_digest(daily, EDITION_DATE, [*stories(), hostile_story()])
    html = rendered.html
    body = body_of(html)
    assert body.find(".//script") is None
    for element in body.iter():
        if isinstance(element.tag, str):
            assert not any(name.startswith("on") for name in element.attrib), element.attrib
    assert "javascript:" not in html and "/relative" not in html
    assert "evil.example" not in html
    assert "alert(5)" not in html and "display:none}" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    titles = [h.text_content() for h in body.find_class("story-title")]
    assert " ".join(HOSTILE_TITLE.split()) in titles
    assert "<b>Bold</b> &amp; more" in html
    assert HOSTILE_TITLE in rendered.text
    assert "alert(5)" not in rendered.text and "&amp;" not in rendered.text


def test_token_look_alikes_in_feeds_stay_inert_text(
    renderer: DigestRenderer, daily: NewsletterConfig
) -> None:
    nested = "__NL___NL_email____"
    sneaky = article(f"Win a prize __NL_unsubscribe_url__ {nested} today", summary="See __NL_email__ here")
    rendered = renderer.render_digest(daily, EDITION_DATE, [sneaky])
    tokens = rendered.tokens
    assert f"Win a prize __NL_unsubscribe_url__ {nested} today" in rendered.html
    assert rendered.html.count(tokens.token("unsubscribe_url")) == 1
    assert rendered.text.count(tokens.token("email")) == 1
    # reader_tag appears only in tracked links (tracking = "per_reader").
    assert tokens.fields_in(rendered.html, rendered.text) == DIGEST_FIELDS - {"reader_tag"}


def test_each_rendering_has_tokens_of_its_own(renderer: DigestRenderer, daily: NewsletterConfig) -> None:
    first = renderer.render_digest(daily, EDITION_DATE, stories())
    second = renderer.render_digest(daily, EDITION_DATE, stories())
    assert first.tokens.nonce != second.tokens.nonce
    assert first.tokens.fields_in(second.html) == set()


def test_utm_parameters_on_article_links_only(render_settings: RenderSettings) -> None:
    utm = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "daily briefing"}
    settings = render_settings(newsletters=[{"id": "daily", "name": "The Daily Briefing", **utm}])
    articles = [
        article("With a query", index=0, url="https://londondaily.example/a?id=7#top"),
        article("Already tagged", index=1, url="https://londondaily.example/b?utm_source=rss"),
    ]
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, articles)
    filled = rendered.filled_html(DIGEST_VALUES)
    hrefs = {a.get("href") for a in body_of(filled).iter("a")}
    tagged = "https://londondaily.example/a?id=7&utm_source=newsletter&utm_medium=email&utm_campaign=daily+briefing#top"
    assert tagged in hrefs
    assert (
        "https://londondaily.example/b?utm_source=rss&utm_medium=email&utm_campaign=daily+briefing" in hrefs
    )
    assert UNSUBSCRIBE_URL in hrefs and PREFERENCES_URL in hrefs
    assert "https://londondaily.example/" in hrefs
    assert tagged in rendered.text
    untagged = [h for h in hrefs if "/news/" not in h and "utm_" not in h]
    assert set(untagged) == {UNSUBSCRIBE_URL, PREFERENCES_URL, "https://londondaily.example/"}


def test_empty_variant_renders_a_short_digest(renderer: DigestRenderer, daily: NewsletterConfig) -> None:
    rendered = renderer.render_digest(daily, EDITION_DATE, [])
    assert "No new stories since the last edition" in rendered.html
    assert "No new stories since the last edition" in rendered.text
    assert rendered.tokens.fields_in(rendered.html) == DIGEST_FIELDS - {"reader_tag"}
    assert body_of(rendered.html).find_class("lead") == []


def test_lines_stay_under_the_smtp_limit(renderer: DigestRenderer, daily: NewsletterConfig) -> None:
    long_title = "Headline " * 400
    rendered = renderer.render_digest(daily, EDITION_DATE, [article(long_title, summary="word " * 300)])
    assert max(len(line.encode()) for line in rendered.html.splitlines()) <= 998
    assert "Headline Headline" in rendered.html


def test_subject_uses_the_newsletter_format(render_settings: RenderSettings) -> None:
    newsletter = {"id": "daily", "name": "Morning", "subject": "{site} | {name} | {date}"}
    settings = render_settings(newsletters=[newsletter])
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, stories())
    assert rendered.subject == "London Daily | Morning | Saturday, 7 March 2026"


def test_operator_templates_override_the_built_in_ones(
    render_settings: RenderSettings, tmp_path: Path
) -> None:
    (tmp_path / "custom" / "email").mkdir(parents=True)
    (tmp_path / "custom" / "email" / "digest.txt").write_text(
        "{{ site.name }} has {{ story_count }} stories. Leave: {{ unsubscribe_url }}\n"
    )
    settings = render_settings(site={"templates_dir": str(tmp_path / "custom")})
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, stories())
    unsubscribe = rendered.tokens.token("unsubscribe_url")
    assert rendered.text == f"London Daily has 6 stories. Leave: {unsubscribe}\n"
    assert "Read more" in rendered.html


def test_confirmation_email(
    renderer: DigestRenderer, daily: NewsletterConfig, settings_plain: Settings
) -> None:
    rendered = renderer.render_confirmation(daily)
    assert rendered.subject == "Confirm your subscription to The Daily Briefing"
    values = {"confirm_url": "https://londondaily.example/confirm/abc.def", "email": "new@example.com"}
    html = rendered.filled_html(values)
    text = rendered.filled_text(values)
    buttons = [a for a in body_of(html).iter("a") if a.text_content() == "Confirm my subscription"]
    assert buttons[0].get("href") == values["confirm_url"]
    for part in (html, text):
        assert "new@example.com" in part and "7 days" in part and "ignore this email" in part
    assert values["confirm_url"] in text
    assert "__NL_" not in html + text
    anonymous = renderer.render_confirmation(None)
    assert anonymous.subject == f"Confirm your subscription to {settings_plain.site.name}"


@pytest.mark.parametrize("language", ["de", "pt-BR"])
def test_language_on_the_root(render_settings: RenderSettings, language: str) -> None:
    settings = render_settings(site={"language": language})
    rendered = DigestRenderer(settings).render_digest(settings.newsletters[0], EDITION_DATE, [])
    assert lxml.html.document_fromstring(rendered.html).get("lang") == language
