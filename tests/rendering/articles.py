"""Fixed articles for rendering tests: unsaved Article rows, lead first."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from newsletter.database.models import Article

EDITION_DATE = date(2026, 3, 7)
NOW = datetime(2026, 3, 7, 7, 0, tzinfo=UTC)
HOSTILE_TITLE = '<script>alert(1)</script> Budget & "tax" <img src=x onerror=alert(2)>'
HOSTILE_SUMMARY = (
    '<p>Click <a href="javascript:alert(3)">here</a> or <a href="/relative">there</a> '
    'or <a href="https://londondaily.example/ok" onclick="alert(4)">safe</a>.</p>'
    "<script>alert(5)</script><style>body{display:none}</style>"
    '<img src="https://evil.example/pixel.gif" onerror="alert(6)"><b>Bold</b> &amp; more'
)

_STORIES = [
    (
        "UK and Japan sign military agreement amid Russia concerns",
        "Defence",
        "https://londondaily.example/img/uk-japan.jpg",
        "<p>Boris Johnson has promised to work with other countries to take on “autocratic, coercive "
        "powers”, after signing a defensive partnership with Japan.</p><p>The agreement is the first "
        "of its kind between Japan and a European country.</p>",
        "Eleanor Hart",
    ),
    (
        "Starmer defends UK role in Iran conflict after renewed criticism",
        "Politics",
        None,
        "The prime minister told MPs that Britain’s support for its allies had been limited and lawful.",
        None,
    ),
    (
        "Blue Owl reveals £36 million exposure after collapse of UK lender",
        "Business",
        "https://londondaily.example/img/blue-owl.jpg",
        "The US investment firm said it expects to recover part of the sum.",
        "James Whitfield",
    ),
    (
        "Saharan dust could bring ‘blood rain’ to parts of the UK",
        "UK",
        None,
        "Forecasters say a plume of dust will mix with showers over the weekend.",
        None,
    ),
    (
        "Axel Springer agrees $770 million deal for the Daily Telegraph",
        "Business",
        None,
        "The German publisher’s offer ends a lengthy sale process.",
        None,
    ),
    (
        "Experts urge Britain to accelerate its renewable energy push",
        None,
        None,
        "Analysts say the cost of delay is rising with every shock to gas prices.",
        None,
    ),
]


def article(
    title: str,
    *,
    index: int = 0,
    section: str | None = "World",
    url: str | None = None,
    image_url: str | None = None,
    summary: str = "",
    author: str | None = None,
) -> Article:
    link = url if url is not None else f"https://londondaily.example/news/{index}"
    return Article(
        id=index + 1,
        guid=link,
        url=link,
        canonical_url=link,
        title=title,
        summary=summary,
        author=author,
        section=section,
        image_url=image_url,
        published_at=NOW - timedelta(minutes=37 * (index + 1)),
        content_hash=f"{index:064d}",
    )


def stories() -> list[Article]:
    return [
        article(title, index=index, section=section, image_url=image, summary=summary, author=author)
        for index, (title, section, image, summary, author) in enumerate(_STORIES)
    ]


def hostile_story(index: int = 99) -> Article:
    return article(
        HOSTILE_TITLE,
        index=index,
        section="<b>World</b>",
        image_url="javascript:alert(7)",
        summary=HOSTILE_SUMMARY,
        author='Eve "><script>alert(8)</script>',
    )
