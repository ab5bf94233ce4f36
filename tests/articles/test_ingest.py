"""Ingesting feeds end to end: a real HTTP server, real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY

from newsletter.articles import ingest_feeds
from newsletter.articles.parsers import FeedParsers
from newsletter.config import FeedConfig
from newsletter.context import AppContext
from newsletter.database.models import utcnow
from tests.articles.conftest import ContextFactory
from tests.articles.feeds import atom, atom_entry, rss, rss_item
from tests.articles.helpers import feed_state, stored_articles
from tests.support.http import FeedServer, Route

HOSTILE_SUMMARY = (
    '<p>Read <a href="/full-story">the story</a>.</p><script>document.cookie</script>'
    '<a href="javascript:alert(1)">click</a><img src="x" onerror="alert(1)">'
    "<iframe src='https://evil.example'></iframe><style>body{display:none}</style>"
    '<a href="data:text/html;base64,PHNjcmlwdD4=">data</a>'
    " Caf&eacute; &lt;script&gt; &amp;lt;b&amp;gt; &#169;"
)


def served(url: str, **options: object) -> FeedConfig:
    """A feed on the tests' HTTP server, which is on loopback: allowed private addresses, as a
    feed on an intranet CMS is (the guard against private addresses: test_fetch_guard.py)."""
    return FeedConfig.model_validate({"url": url, "allow_private": True, **options})


def three_items() -> bytes:
    return rss(
        rss_item("First", "https://news.example/1", guid="https://news.example/1", category="world"),
        rss_item("Second", "https://news.example/2", guid="https://news.example/2", category="Sport"),
        rss_item("Third", "https://news.example/3", guid="https://news.example/3", pub_date=None),
    )


async def test_rss_feed_stored_with_its_fields(make_context: ContextFactory, feed_server: FeedServer) -> None:
    context = await make_context(site={"sections": ["World", "Politics"]})
    url = feed_server.route("/rss.xml", Route(body=three_items()))
    before = utcnow()
    [report] = await ingest_feeds(context, [served(url, name="Test News")])
    assert (report.name, report.new, report.updated, report.unchanged, report.error) == (
        "Test News",
        3,
        0,
        0,
        None,
    )
    first, second, third = await stored_articles(context)
    assert (first.title, first.section, first.guid, first.feed_url) == ("First", "World", first.url, url)
    assert first.published_at == datetime(2026, 3, 7, 9, 0, tzinfo=UTC)
    assert second.section == "Sport"
    assert third.published_at >= before  # no date: the time of ingestion
    assert len({article.content_hash for article in (first, second, third)}) == 3


async def test_atom_feed(make_context: ContextFactory, feed_server: FeedServer) -> None:
    context = await make_context()
    entries = atom(
        atom_entry("Atom one", "https://news.example/a/1", summary='See <a href="more">more</a>'),
        atom_entry("Atom two", "https://news.example/a/2", entry_id="tag:news.example,2026:2"),
    )
    url = feed_server.route("/atom.xml", Route(body=entries, content_type="application/atom+xml"))
    [report] = await ingest_feeds(context, [served(url, section="Politics")])
    assert report.new == 2 and report.error is None
    one, two = await stored_articles(context)
    assert one.summary == 'See <a href="https://news.example/a/more" rel="noopener noreferrer">more</a>'
    assert {one.section, two.section} == {"Politics"}
    assert one.guid == "tag:news.example,2026:1"


async def test_the_same_feed_twice_creates_nothing_new(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    url = feed_server.route("/rss.xml", Route(body=three_items()))
    await ingest_feeds(context, [served(url)])
    [again] = await ingest_feeds(context, [served(url)])
    assert (again.new, again.updated, again.unchanged, again.not_modified) == (0, 0, 3, False)
    assert len(await stored_articles(context)) == 3


async def test_etag_gives_a_304_and_no_parsing(make_context: ContextFactory, feed_server: FeedServer) -> None:
    context = await make_context()
    url = feed_server.route("/etag.xml", Route(body=three_items(), etag='"v1"'))
    [first] = await ingest_feeds(context, [served(url)])
    [second] = await ingest_feeds(context, [served(url)])
    assert first.new == 3 and not first.not_modified
    assert second.not_modified and (second.new, second.updated, second.unchanged) == (0, 0, 0)
    requests = feed_server.requests_for("/etag.xml")
    assert "if-none-match" not in requests[0].headers
    assert requests[1].headers["if-none-match"] == '"v1"'
    state = await feed_state(context, url)
    assert state is not None and (state.etag, state.last_status, state.last_error) == ('"v1"', 304, None)


async def test_last_modified_gives_a_304(make_context: ContextFactory, feed_server: FeedServer) -> None:
    context = await make_context()
    stamp = "Sat, 07 Mar 2026 10:00:00 GMT"
    url = feed_server.route("/lm.xml", Route(body=three_items(), last_modified=stamp))
    await ingest_feeds(context, [served(url)])
    [second] = await ingest_feeds(context, [served(url)])
    assert second.not_modified
    assert feed_server.requests_for("/lm.xml")[1].headers["if-modified-since"] == stamp


async def test_a_poll_with_nothing_to_parse_starts_no_sandbox(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    """A poll where every feed answers 304 (most of cron's) starts no parsing process (each costs
    about a second); the first feed with something to parse starts them."""
    context = await make_context()
    url = feed_server.route("/idle.xml", Route(body=three_items(), etag='"v1"'))
    await ingest_feeds(context, [served(url)])

    def started() -> float:
        return REGISTRY.get_sample_value("newsletter_feed_sandboxes_started_total") or 0.0

    async with FeedParsers(2) as parsers:
        before = started()
        [idle] = await ingest_feeds(context, [served(url)], parsers=parsers)
        assert idle.not_modified and started() == before and parsers.pids() == []
        changed = rss(rss_item("Fourth", "https://news.example/4", guid="https://news.example/4"))
        feed_server.route("/idle.xml", Route(body=changed, etag='"v2"'))
        [busy] = await ingest_feeds(context, [served(url)], parsers=parsers)
        assert busy.new == 1 and started() == before + 2 and parsers.pids()


async def test_changed_entry_updates_the_article(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    item = rss_item(
        "Story", "https://news.example/s", guid="https://news.example/s", description="Version one"
    )
    url = feed_server.route("/rss.xml", Route(body=rss(item)))
    await ingest_feeds(context, [served(url)])
    [before] = await stored_articles(context)
    changed = item.replace("Version one", "Version two").replace("<title>Story", "<title>Story, updated")
    feed_server.route("/rss.xml", Route(body=rss(changed)))
    [report] = await ingest_feeds(context, [served(url)])
    assert (report.new, report.updated, report.unchanged) == (0, 1, 0)
    [after] = await stored_articles(context)
    assert after.id == before.id
    assert (after.title, after.summary) == ("Story, updated", "Version two")
    assert after.updated_at > before.updated_at and after.created_at == before.created_at


async def test_two_feeds_with_one_story_store_it_once(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    one = feed_server.route(
        "/one.xml", Route(body=rss(rss_item("Shared", "https://news.example/shared", guid="a-1")))
    )
    copy = rss_item("Shared (copy)", "HTTPS://NEWS.example/shared?utm_source=feed#top", guid="b-7")
    two = feed_server.route("/two.xml", Route(body=rss(copy)))
    first, second = await ingest_feeds(context, [served(one), served(two)])
    [article] = await stored_articles(context)
    assert first.new + second.new == 1 and first.unchanged + second.unchanged == 1
    assert article.canonical_url == "https://news.example/shared"


async def test_bare_ids_are_scoped_to_their_feed(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    world = feed_server.route(
        "/world.xml", Route(body=rss(rss_item("W", "https://news.example/w", guid="12345")))
    )
    sport = feed_server.route(
        "/sport.xml", Route(body=rss(rss_item("S", "https://news.example/s", guid="12345")))
    )
    await ingest_feeds(context, [served(world), served(sport)])
    guids = sorted(article.guid or "" for article in await stored_articles(context))
    assert guids == [f"{sport}#12345", f"{world}#12345"]


async def test_hostile_summaries_are_stored_inert(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    item = rss_item(
        "<script>alert(1)</script>Headline", "https://news.example/h/1", description=HOSTILE_SUMMARY
    )
    url = feed_server.route("/hostile.xml", Route(body=rss(item)))
    [report] = await ingest_feeds(context, [served(url)])
    assert report.new == 1
    [article] = await stored_articles(context)
    for marker in ("<script", "javascript:", "onerror", "<iframe", "<style", "data:", "<img"):
        assert marker not in article.summary
    assert article.summary.startswith(
        'Read <a href="https://news.example/full-story" rel="noopener noreferrer">the story</a>.'
    )
    # Entities decoded once: "&eacute;" is é, "&lt;script&gt;" is the text "<script>" (kept escaped),
    # and "&amp;lt;b&amp;gt;" is the text "&lt;b&gt;", not a tag.
    assert "Caf\u00e9 &lt;script&gt; &amp;lt;b&amp;gt; \u00a9" in article.summary
    # feedparser calls a title holding a script plain text: it is kept as text, escaped wherever shown.
    assert article.title == "<script>alert(1)</script>Headline"


async def test_bad_feeds_are_reported_and_the_others_ingest(
    make_context: ContextFactory, feed_server: FeedServer, tmp_path: Path
) -> None:
    context = await make_context(ingest={"timeout": 0.5})
    page = (
        b'<!doctype html><html><head><link rel="alternate" type="application/atom+xml" href="/a.xml"></head>'
    )
    feeds = [
        feed_server.route("/good.xml", Route(body=three_items())),
        feed_server.route("/page.html", Route(body=page, content_type="text/html")),
        feed_server.route("/gone.xml", Route(status=404, body=b"gone", content_type="text/plain")),
        feed_server.route("/broken.xml", Route(status=500, body=b"oops", content_type="text/plain")),
        feed_server.route("/slow.xml", Route(body=three_items(), delay=30)),
        feed_server.route("/trickle.xml", Route(body=three_items(), trickle=0.2)),
        str(tmp_path / "missing.xml"),
        feed_server.url("/loop0"),
    ]
    for hop in range(6):
        feed_server.route(f"/loop{hop}", Route(redirect_to=feed_server.url(f"/loop{hop + 1}")))
    reports = await ingest_feeds(context, [served(url) for url in feeds])
    errors = [report.error for report in reports]
    assert reports[0].new == 3 and errors[0] is None
    assert errors[1] == f"not a feed: an HTML page; the page names a feed at {feed_server.url('/a.xml')}"
    assert errors[2] == "HTTP 404 Not Found"
    assert errors[3] == "HTTP 500 Internal Server Error"
    assert errors[4] is not None and "0.5 s" in errors[4]
    assert errors[5] == "no complete answer within 0.5 s"  # each byte came in time, the whole did not
    assert errors[6] is not None and errors[6].startswith("cannot read") and "No such file" in errors[6]
    assert errors[7] == "more than 5 redirects"
    assert len(await stored_articles(context)) == 3
    state = await feed_state(context, feeds[2])
    assert state is not None and (state.last_status, state.last_error) == (404, "HTTP 404 Not Found")


async def test_redirects_within_the_limit_are_followed(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    feed_server.route("/final/feed.xml", Route(body=rss(rss_item("Moved", "story"))))
    feed_server.route("/old.xml", Route(redirect_to=feed_server.url("/final/feed.xml")))
    [report] = await ingest_feeds(context, [served(feed_server.url("/old.xml"))])
    [article] = await stored_articles(context)
    assert report.error is None
    assert article.url == feed_server.url("/final/story")  # relative to where the feed really was


async def test_malformed_feed_yields_what_parses_and_a_warning(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    body = three_items().replace(
        b"</channel>", b"<item><title>Broken & bare</title><link>https://news.example/4"
    )
    url = feed_server.route("/bozo.xml", Route(body=body))
    [report] = await ingest_feeds(context, [served(url, name="Sloppy Times")])
    assert report.error is None and report.new >= 3
    assert len(report.warnings) == 1 and report.warnings[0].startswith("Sloppy Times: malformed feed")


async def test_entries_without_title_or_link_are_counted(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    body = rss(
        rss_item(None, "https://news.example/1"),
        rss_item("No link", None),
        rss_item("Ok", "https://news.example/3"),
    )
    url = feed_server.route("/partial.xml", Route(body=body))
    [report] = await ingest_feeds(context, [served(url)])
    assert report.new == 1 and report.skipped == {"no link": 1, "no title": 1} and report.skipped_total == 2


async def test_body_size_is_capped(make_context: ContextFactory, feed_server: FeedServer) -> None:
    context = await make_context(ingest={"max_bytes": 65536})
    big = rss(
        *(rss_item(f"Story {n}", f"https://news.example/{n}", description="x" * 500) for n in range(300))
    )
    zeros = b"<rss>" + b" " * 50_000_000 + b"</rss>"  # 50 MB that gzip makes 50 kB
    feeds = [
        feed_server.route("/declared.xml", Route(body=big)),
        feed_server.route("/chunked.xml", Route(body=big, chunked=True)),
        feed_server.route("/bomb.xml", Route(body=zeros, gzip=True)),
    ]
    reports = await ingest_feeds(context, [served(url) for url in feeds])
    assert [report.error for report in reports] == [
        f"feed larger than 65536 bytes ({len(big)} declared)",
        "feed larger than 65536 bytes",
        "feed larger than 65536 bytes",
    ]
    assert await stored_articles(context) == []


async def test_user_agent_and_accept_are_sent(make_context: ContextFactory, feed_server: FeedServer) -> None:
    context = await make_context(
        ingest={"user_agent": "LondonDailyBot/1.0 (+https://londondaily.example/bot)"}
    )
    url = feed_server.route("/ua.xml", Route(body=three_items()))
    await ingest_feeds(context, [served(url)])
    [request] = feed_server.requests_for("/ua.xml")
    assert request.headers["user-agent"] == "LondonDailyBot/1.0 (+https://londondaily.example/bot)"
    assert "application/rss+xml" in request.headers["accept"]


async def test_local_file_feed_and_unchanged_file(make_context: ContextFactory, tmp_path: Path) -> None:
    context = await make_context()
    path = tmp_path / "local.xml"
    path.write_bytes(rss(rss_item("Local", "https://news.example/local"), link="https://news.example/"))
    feed = served(str(path))
    [first] = await ingest_feeds(context, [feed])
    [second] = await ingest_feeds(context, [feed])
    path.write_bytes(rss(rss_item("Local, edited", "https://news.example/local")))
    [third] = await ingest_feeds(context, [feed])
    assert (first.new, second.not_modified, third.updated) == (1, True, 1)


async def test_concurrent_ingests_store_each_story_once(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    items = [
        rss_item(f"Story {n}", f"https://news.example/{n}", guid=f"https://news.example/{n}")
        for n in range(40)
    ]
    url = feed_server.route("/busy.xml", Route(body=rss(*items)))
    feed = served(url)
    runs = await asyncio.gather(*(ingest_feeds(context, [feed]) for _ in range(3)))
    reports = [report for run in runs for report in run]
    assert [report.error for report in reports] == [None, None, None]
    assert sum(report.new for report in reports) == 40
    assert sum(report.new + report.unchanged + report.updated for report in reports) == 120
    assert len(await stored_articles(context)) == 40


async def test_metrics_count_outcomes_and_errors(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    new_before = sample("newsletter_articles_ingested_total", source="feed", outcome="new")
    http_before = sample("newsletter_feed_errors_total", kind="http")
    good = feed_server.route("/m.xml", Route(body=three_items()))
    bad = feed_server.route("/m404.xml", Route(status=404))
    await ingest_feeds(context, [served(good), served(bad)])
    assert sample("newsletter_articles_ingested_total", source="feed", outcome="new") == new_before + 3
    assert sample("newsletter_feed_errors_total", kind="http") == http_before + 1


async def test_feed_without_dates_is_stable(make_context: ContextFactory, feed_server: FeedServer) -> None:
    """Dateless entries take the first ingestion time and keep it, so re-ingesting changes nothing."""
    context = await make_context()
    url = feed_server.route(
        "/nodate.xml", Route(body=rss(rss_item("Undated", "https://news.example/u", pub_date=None)))
    )
    await ingest_feeds(context, [served(url)])
    [before] = await stored_articles(context)
    [report] = await ingest_feeds(context, [served(url)])
    [after] = await stored_articles(context)
    assert report.unchanged == 1 and after.published_at == before.published_at
    assert utcnow() - after.published_at < timedelta(minutes=5)


async def test_password_in_a_feed_url_is_not_shown(context: AppContext, feed_server: FeedServer) -> None:
    url = feed_server.route("/private.xml", Route(body=three_items())).replace("://", "://reader:s3cret@")
    [report] = await ingest_feeds(context, [served(url)])
    assert report.feed == url.replace("s3cret", "****") and "s3cret" not in report.name
    assert all("s3cret" not in (article.feed_url or "") for article in await stored_articles(context))


async def test_one_fetch_stores_at_most_max_entries_per_feed(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    """Before, a feed of 10,000 entries stored 10,000 articles from one fetch."""
    context = await make_context(articles={"max_entries_per_feed": 20})
    items = [
        rss_item(
            f"Story {n}",
            f"https://news.example/{n}",
            pub_date=f"Sat, 07 Mar 2026 {hour:02d}:{n:02d}:00 +0000",
        )
        for hour in range(24)
        for n in range(hour % 2, 25, 2)
    ]
    url = feed_server.route("/many.xml", Route(body=rss(*items)))
    [report] = await ingest_feeds(context, [served(url)])
    assert (report.new, report.skipped) == (20, {"over articles.max_entries_per_feed": 280})
    stored = await stored_articles(context)
    oldest_kept = min(article.published_at for article in stored)
    # The newest twenty: published at 23:xx and 22:xx.
    assert len(stored) == 20 and oldest_kept >= datetime(2026, 3, 7, 22, 0, tzinfo=UTC)
