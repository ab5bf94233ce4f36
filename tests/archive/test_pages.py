"""The web archive over the app (real database, real SMTP): what an email links to, what a page,
the index, the feed and the sitemap show, and what they never show."""

from __future__ import annotations

import email.message
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import feedparser
import httpx
import pytest
from sqlalchemy import update

from newsletter.context import AppContext
from newsletter.database.models import Article, Delivery, Edition
from newsletter.editions import service
from newsletter.editions.sending import drain
from newsletter.rendering.archive_links import ArchiveLinks
from newsletter.web import create_app
from tests.conftest import ADMIN_TOKEN, SettingsFactory
from tests.support.editions import Scenario, Setup, deliveries
from tests.support.smtp import Mailbox

BASE_URL = "https://news.londondaily.example"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def daily(**options: object) -> list[dict[str, object]]:
    return [{"id": "daily", "name": "London Daily Briefing", **options}]


@asynccontextmanager
async def sent(scenario: Scenario, subscribers: int = 3, **newsletter: object) -> AsyncIterator[Setup]:
    async with scenario(Mailbox(), subscribers, newsletters=daily(**newsletter)) as s:
        await drain(s.context, editions={s.edition.id})
        yield s


@asynccontextmanager
async def web(context: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(context.settings, context)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def scenario(make_settings: SettingsFactory) -> Scenario:
    from tests.support.editions import scenario_factory

    def settings(**sections: object) -> object:
        return make_settings(site={"base_url": BASE_URL}, **sections)

    return scenario_factory(settings)  # type: ignore[arg-type]


def emails(s: Setup) -> list[email.message.EmailMessage]:
    return [received.message() for received in s.handler.messages()]


def view_links(message: email.message.EmailMessage) -> tuple[str, str]:
    """The "View in your browser" link of the HTML part and of the plain-text part."""
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    in_html = re.search(r'<a href="([^"]+)"[^>]*>View in your browser</a>', html)
    in_text = re.search(r"^View in your browser: (\S+)\s*$", text, re.M)
    assert in_html and in_text, "no view-in-browser link"
    return in_html.group(1).replace("&amp;", "&"), in_text.group(1)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL, url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def titles_in(html: str) -> list[str]:
    return re.findall(r'<a href="https://londondaily\.example/story/[^"]+">([^<]+)</a></h[23]>', html)


async def test_the_emails_link_opens_the_same_stories_with_nothing_personal(scenario: Scenario) -> None:
    async with sent(scenario, utm_source="newsletter", utm_medium="email") as s, web(s.context) as client:
        messages = emails(s)
        assert len(messages) == 3
        html_link, text_link = view_links(messages[0])
        assert html_link == text_link
        assert {view_links(m)[0] for m in messages} == {html_link}  # not personal: one link for all
        assert urlsplit(html_link).path == f"/archive/daily/{s.edition.edition_date.isoformat()}"
        assert parse_qs(urlsplit(html_link).query) == {"utm_source": ["newsletter"], "utm_medium": ["email"]}

        page = await client.get(path_of(html_link))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        email_html = messages[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
        emailed = re.findall(r'class="(?:lead|story)-title"[^>]*><a [^>]*>([^<]+)</a>', email_html)
        assert emailed and titles_in(page.text) == emailed
        for message in messages:
            assert message["To"].addresses[0].addr_spec not in page.text
        assert not re.search(r"/(unsubscribe|preferences|confirm)/", page.text)
        assert "Sign up" in page.text and "manage your subscription" in page.text
        assert '<meta name="robots" content="index, follow">' in page.text
        canonical = f'<link rel="canonical" href="{BASE_URL}/archive/daily/{s.edition.edition_date}">'
        assert canonical in page.text
        assert '<meta property="og:image" content="https://londondaily.example/images/lead.jpg">' in page.text
        assert page.headers["cache-control"] == "public, max-age=60"

        again = await client.get(path_of(html_link), headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


async def test_only_editions_sent_to_someone_and_not_cancelled_are_published(
    scenario: Scenario,
) -> None:
    async with scenario(Mailbox(), 2, newsletters=daily()) as s:
        path = f"/archive/daily/{s.edition.edition_date}"
        async with web(s.context) as client:
            assert (await client.get(path)).status_code == 404  # enqueued, nothing sent yet
        async with s.context.db.session() as session:  # one reader had it before the cancel
            first = (await deliveries(s.context, s.edition.id))[0]
            await session.execute(update(Delivery).where(Delivery.id == first.id).values(status="sent"))
            await session.commit()
        async with web(s.context) as client:  # a new app: the cache starts empty
            assert (await client.get(path)).status_code == 200
        await service.cancel(s.context, s.edition.id)
        async with web(s.context) as client:
            assert (await client.get(path)).status_code == 404
            index = await client.get("/archive/daily")
            assert index.status_code == 200 and "No edition has been published yet." in index.text


async def test_unpublishing_removes_the_page_the_index_row_and_the_feed_entry_at_once(
    scenario: Scenario,
) -> None:
    async with sent(scenario) as s, web(s.context) as client:
        path = f"/archive/daily/{s.edition.edition_date}"
        for where in (path, "/archive/daily", "/archive/daily/feed.xml", "/sitemap.xml"):
            listed = await client.get(where)  # the page itself names it in its canonical link
            assert listed.status_code == 200 and path in listed.text, where
        assert len(feedparser.parse((await client.get("/archive/daily/feed.xml")).content).entries) == 1

        taken = await client.delete(f"/api/editions/{s.edition.id}/archive", headers=ADMIN)
        assert taken.status_code == 200
        assert taken.json()["published"] is False and taken.json()["unpublished_at"]
        assert (await client.get(path)).status_code == 404
        assert path not in (await client.get("/archive/daily")).text
        assert feedparser.parse((await client.get("/archive/daily/feed.xml")).content).entries == []
        assert path not in (await client.get("/sitemap.xml")).text

        back = await client.put(f"/api/editions/{s.edition.id}/archive", headers=ADMIN)
        assert back.json()["published"] is True and back.json()["url"] == BASE_URL + path
        assert (await client.get(path)).status_code == 200

        assert (await client.delete(f"/api/editions/{s.edition.id}/archive")).status_code == 401
        assert (await client.delete("/api/editions/999999/archive", headers=ADMIN)).status_code == 404


async def test_a_private_archive_opens_only_with_its_editions_key(scenario: Scenario) -> None:
    async with sent(scenario, archive="private") as s:
        [other] = await extra_editions(s, 1)
        async with web(s.context) as client:
            [first_link, *_] = [view_links(m)[0] for m in emails(s)]
            key = parse_qs(urlsplit(first_link).query)["key"][0]
            path = urlsplit(first_link).path
            page = await client.get(path_of(first_link))
            assert page.status_code == 200
            assert page.headers["x-robots-tag"] == "noindex, nofollow"
            assert page.headers["cache-control"].startswith("private")
            assert '<meta name="robots" content="noindex, nofollow">' in page.text
            assert key not in page.text and "canonical" not in page.text

            second = f"/archive/daily/{other.edition_date}/2"
            assert (await client.get(f"{second}?key={key}")).status_code == 404  # another edition's key
            own_key = ArchiveLinks(s.context.settings).key(other.id)
            assert (await client.get(f"{second}?key={own_key}")).status_code == 200
            forged = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
            for attempt in (path, f"{path}?key={forged}", f"{path}?key=", f"{path}?key={key}x"):
                assert (await client.get(attempt)).status_code == 404, attempt
            for listing in ("/archive/daily", "/archive/daily/feed.xml"):
                assert (await client.get(listing)).status_code == 404
            assert path not in (await client.get("/sitemap.xml")).text
            assert "London Daily Briefing" not in (await client.get("/archive")).text


async def test_archive_off_means_no_link_and_no_pages(scenario: Scenario) -> None:
    async with sent(scenario, archive="off") as s, web(s.context) as client:
        message = emails(s)[0]
        assert "View in your browser" not in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "View in your browser" not in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for path in (f"/archive/daily/{s.edition.edition_date}", "/archive/daily", "/archive/daily/feed.xml"):
            assert (await client.get(path)).status_code == 404, path


async def test_a_readers_sections_get_their_own_page(scenario: Scenario) -> None:
    sections = ["World", "Politics", "Business", "Energy", "Defence"]
    async with scenario(Mailbox(), 2, newsletters=daily(sections=sections), sections=["World"]) as s:
        await drain(s.context, editions={s.edition.id})
        async with web(s.context) as client:
            link = view_links(emails(s)[0])[0]
            assert parse_qs(urlsplit(link).query)["sections"] == ["World"]
            narrow = await client.get(path_of(link))
            full = await client.get(urlsplit(link).path)
            assert narrow.status_code == full.status_code == 200
            assert 0 < len(titles_in(narrow.text)) < len(titles_in(full.text))
            assert ">Politics</h2>" in full.text and ">Politics</h2>" not in narrow.text
            assert (await client.get(f"{urlsplit(link).path}?sections=Nowhere")).status_code == 404


async def test_content_cannot_smuggle_a_reader_into_the_page(scenario: Scenario) -> None:
    async with scenario(Mailbox(), 2, newsletters=daily()) as s:
        async with s.context.db.session() as session:
            await session.execute(
                update(Article).values(
                    title="{{ email }} *|EMAIL|* %recipient% {unsubscribe_url}",
                    summary='<p>Write to <a href="mailto:reader0@readers.example">us</a></p>',
                )
            )
            await session.commit()
        await drain(s.context, editions={s.edition.id})
        async with web(s.context) as client:
            page = await client.get(f"/archive/daily/{s.edition.edition_date}")
            feed = await client.get("/archive/daily/feed.xml")
        for body in (page.text, feed.text):
            assert "readers.example" not in body
            assert "{{ email }}" in body or "{{ email }}" in body.replace("&#34;", '"')
            assert not re.search(r"/(unsubscribe|preferences)/", body)


async def test_the_feed_is_valid_atom(scenario: Scenario) -> None:
    async with sent(scenario) as s, web(s.context) as client:
        response = await client.get("/archive/daily/feed.xml")
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.bozo_exception
        assert feed.version == "atom10"
        assert feed.feed.title.startswith("London Daily Briefing")
        assert feed.feed.author == "London Daily"
        links = {link.rel: link.href for link in feed.feed.links}
        assert links == {
            "self": f"{BASE_URL}/archive/daily/feed.xml",
            "alternate": f"{BASE_URL}/archive/daily",
        }
        [entry] = feed.entries
        page_url = f"{BASE_URL}/archive/daily/{s.edition.edition_date}"
        assert (entry.id, entry.link) == (page_url, page_url)
        assert entry.title.startswith("London Daily Briefing") and entry.updated_parsed
        assert entry.summary.startswith("Story number")


async def test_the_index_pages_newest_first(scenario: Scenario) -> None:
    async with sent(scenario) as s:
        await extra_editions(s, 21)
        async with web(s.context) as client:
            first = await client.get("/archive/daily")
            second = await client.get("/archive/daily?page=2")
            assert (await client.get("/archive/daily?page=3")).status_code == 404
            assert (await client.get("/archive/daily?page=0")).status_code in (404, 422)
    day = s.edition.edition_date
    shown = re.findall(rf'<a href="{BASE_URL}/archive/daily/{day}(/\d+)?">', first.text)
    assert shown[:2] == ["/22", "/21"] and len(shown) == 20
    assert re.findall(rf'<a href="{BASE_URL}/archive/daily/{day}(/\d+)?">', second.text) == ["/2", ""]
    assert 'rel="next"' in first.text and 'rel="prev"' in second.text


async def extra_editions(s: Setup, count: int) -> list[Edition]:
    """`count` more editions of the day (as `send --new` makes), each sent to one reader."""
    first = (await deliveries(s.context, s.edition.id))[0]
    made = []
    async with s.context.db.session() as session:
        for sequence in range(1, count + 1):
            edition = Edition(
                newsletter_id="daily",
                edition_date=s.edition.edition_date,
                sequence=sequence,
                status="done",
                since_at=s.edition.since_at,
                cutoff_at=s.edition.cutoff_at,
                total=1,
            )
            session.add(edition)
            await session.flush()
            made.append(edition)
            session.add(
                Delivery(
                    edition_id=edition.id,
                    subscriber_id=first.subscriber_id,
                    status="sent",
                    attempts=1,
                    next_attempt_at=first.next_attempt_at,
                )
            )
        await session.commit()
    return made


async def test_sitemap_and_robots_point_crawlers_at_public_pages(scenario: Scenario) -> None:
    async with sent(scenario) as s, web(s.context) as client:
        sitemap = await client.get("/sitemap.xml")
        assert sitemap.status_code == 200
        locations = re.findall(r"<loc>([^<]+)</loc>", sitemap.text)
        assert locations == [
            f"{BASE_URL}/",
            f"{BASE_URL}/archive/daily",
            f"{BASE_URL}/archive/daily/{s.edition.edition_date}",
        ]
        robots = (await client.get("/robots.txt")).text
        assert f"Sitemap: {BASE_URL}/sitemap.xml" in robots.splitlines()
        home = await client.get("/archive")
        assert home.status_code == 200 and 'href="/archive/daily"' in home.text


async def test_unknown_newsletters_dates_and_numbers_are_404(scenario: Scenario) -> None:
    async with sent(scenario) as s, web(s.context) as client:
        day = s.edition.edition_date
        for path in (
            "/archive/weekly",
            f"/archive/weekly/{day}",
            "/archive/daily/2026-02-30",
            "/archive/daily/yesterday",
            f"/archive/daily/{day}/1",
            f"/archive/daily/{day}/2",
            f"/archive/daily/{day}/99999",
        ):
            response = await client.get(path, headers={"Accept": "text/html"})
            assert response.status_code == 404, path
