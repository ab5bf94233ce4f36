"""Text, HTML and URL clean-up: sanitising, decoding once, truncating at words, canonical URLs."""

from __future__ import annotations

import pytest

from newsletter.articles.clean import (
    absolute_url,
    canonical_url,
    first_image,
    plain_text,
    sanitise_summary,
    text_of,
    truncate_text,
)

BASE = "https://news.example/world/story.html"


def summary(value: str, max_chars: int = 600) -> str:
    return sanitise_summary(value, base_url=BASE, max_chars=max_chars)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("HTTPS://News.Example/a/b?x=1#top", "https://news.example/a/b?x=1"),
        ("https://news.example/a?utm_source=rss&id=7&UTM_Medium=x", "https://news.example/a?id=7"),
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example:8443/a", "https://news.example:8443/a"),
        ("https://news.example", "https://news.example/"),
        ("https://news.example/A%20B/?q=%C3%A9&utm_campaign=z", "https://news.example/A%20B/?q=%C3%A9"),
    ],
)
def test_canonical_url(given: str, expected: str) -> None:
    assert canonical_url(given) == expected


def test_absolute_url_resolves_and_refuses() -> None:
    assert absolute_url("../img/a.jpg", BASE) == "https://news.example/img/a.jpg"
    assert absolute_url("//cdn.example/x.png", BASE) == "https://cdn.example/x.png"
    for bad in (
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "ftp://x.example/a",
        "http://",
        "a b",
        "",
    ):
        assert absolute_url(bad, BASE) is None
    assert absolute_url("/relative", None) is None


def test_hostile_markup_is_removed() -> None:
    hostile = (
        '<p>Safe <b>bold</b> <script>alert("x")</script><style>p{}</style>'
        '<a href="javascript:alert(1)">js</a> <a href="data:text/html,x">data</a> '
        '<img src="x" onerror="alert(1)"><iframe src="https://evil.example"></iframe>'
        '<a href="/more" onclick="steal()">more</a> <svg onload="alert(1)"><circle/></svg>'
        '<a href="jav&#x09;ascript:alert(1)">tab</a></p>'
    )
    cleaned = summary(hostile)
    for marker in (
        "<script",
        "alert",
        "<style",
        "javascript",
        "data:",
        "onerror",
        "onclick",
        "<iframe",
        "<svg",
        "<img",
    ):
        assert marker not in cleaned
    assert '<a href="https://news.example/more" rel="noopener noreferrer">more</a>' in cleaned
    assert "<b>bold</b>" in cleaned


def test_entities_are_decoded_exactly_once() -> None:
    # The feed carried "&amp;lt;b&amp;gt;" (feedparser already undid the XML layer): the reader sees "<b>".
    assert summary("Tags like &lt;b&gt; and AT&amp;T") == "Tags like &lt;b&gt; and AT&amp;T"
    assert text_of(summary("Tags like &lt;b&gt; and AT&amp;T")) == "Tags like <b> and AT&T"
    assert plain_text("Fish &amp;amp; chips &lt;b&gt;", is_html=True) == "Fish &amp; chips <b>"
    assert plain_text("Fish &amp; chips", is_html=False) == "Fish &amp; chips"


def test_paragraphs_keep_a_space_between_them() -> None:
    assert summary("<p>One.</p><p>Two.</p><div>Three<br>Four</div>") == "One. Two. Three Four"


def test_truncate_text_at_a_word_with_ellipsis() -> None:
    assert truncate_text("short", 10) == "short"
    cut = truncate_text("The quick brown fox jumps over the lazy dog", 20)
    assert cut == "The quick brown fox\u2026"
    assert len(cut) <= 20
    assert truncate_text("Supercalifragilisticexpialidocious", 10) == "Supercali\u2026"
    assert truncate_text("Words, with commas, everywhere", 21) == "Words, with commas\u2026"


def test_summary_truncated_on_text_not_markup() -> None:
    long_html = "<b>" + "word " * 200 + "</b> <a href='/x'>" + "link " * 50 + "</a>"
    cut = summary(long_html, max_chars=50)
    assert cut.startswith("<b>word word")
    assert cut.endswith("\u2026</b>")
    text = text_of(cut)
    assert len(text) <= 50
    assert not text[:-1].endswith(" ")
    # Markup does not count against the limit, and truncation is stable.
    assert summary(cut, max_chars=50) == cut


def test_summary_truncation_inside_a_link_closes_it() -> None:
    cut = summary("Intro <a href='/x'>a long linked sentence that goes on</a> after", max_chars=20)
    assert cut == 'Intro <a href="https://news.example/x" rel="noopener noreferrer">a long linked\u2026</a>'


def test_first_image() -> None:
    assert (
        first_image('<p>x <img src="/i/a.png"> <img src="b.png"></p>', BASE) == "https://news.example/i/a.png"
    )
    assert first_image('<img src="javascript:x">', BASE) is None
    assert first_image("no image", BASE) is None


def test_control_characters_and_line_breaks_leave_titles() -> None:
    assert (
        plain_text("Breaking\r\nBcc: x@y.example\x00\x07 news", is_html=False)
        == "Breaking Bcc: x@y.example news"
    )
