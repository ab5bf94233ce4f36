"""upsert_articles: de-duplication by guid then canonical URL, updates, and races, on both backends."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from newsletter.articles import ArticleInput, UpsertCounts, upsert_articles
from newsletter.context import AppContext
from tests.articles.helpers import stored_articles

NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
WHEN = datetime(2026, 3, 7, 9, 0, tzinfo=UTC)


def article(url: str, title: str = "Title", **fields: object) -> ArticleInput:
    return ArticleInput.model_validate({"title": title, "url": url, "published_at": WHEN, **fields})


async def upsert(context: AppContext, *items: ArticleInput, now: datetime = NOW) -> UpsertCounts:
    async with context.db.session() as session, session.begin():
        return await upsert_articles(session, items, now=now)


async def test_new_unchanged_updated(context: AppContext) -> None:
    first = await upsert(context, article("https://n.example/1"), article("https://n.example/2"))
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    again = await upsert(context, article("https://n.example/2"), article("https://n.example/1", "New title"))
    assert (again.new, again.updated, again.unchanged) == (0, 1, 1)
    assert again.ids == list(reversed(first.ids))


async def test_guid_match_keeps_the_url_another_article_holds(context: AppContext) -> None:
    await upsert(
        context, article("https://n.example/x", guid="urn:x", feed_url="f"), article("https://n.example/y")
    )
    counts = await upsert(
        context, article("https://n.example/y#frag", "X, revised", guid="urn:x", feed_url="f")
    )
    x, y = await stored_articles(context)
    assert (counts.updated, counts.ids) == (1, [x.id])
    assert (x.title, x.url, x.canonical_url) == ("X, revised", "https://n.example/x", "https://n.example/x")
    assert (y.title, y.url) == ("Title", "https://n.example/y")


async def test_guid_match_moves_to_a_free_url(context: AppContext) -> None:
    await upsert(context, article("https://n.example/old", guid="urn:m"))
    await upsert(context, article("https://n.example/new", guid="urn:m"))
    [moved] = await stored_articles(context)
    assert (moved.url, moved.canonical_url) == ("https://n.example/new", "https://n.example/new")
    # The old URL is free again for another story.
    assert (await upsert(context, article("https://n.example/old"))).new == 1


async def test_pushed_article_adopts_the_feed_guid(context: AppContext) -> None:
    await upsert(context, article("https://n.example/p"))
    counts = await upsert(context, article("https://n.example/p", guid="https://n.example/p", feed_url="f"))
    [adopted] = await stored_articles(context)
    assert counts.new == 0 and adopted.guid == "https://n.example/p"


async def test_another_feeds_copy_changes_nothing(context: AppContext) -> None:
    await upsert(
        context, article("https://n.example/s", "Original", guid="f1#1", feed_url="f1", section="World")
    )
    counts = await upsert(
        context, article("https://n.example/s", "Copy", guid="f2#9", feed_url="f2", section="UK")
    )
    [kept] = await stored_articles(context)
    assert counts.unchanged == 1
    assert (kept.title, kept.section, kept.guid) == ("Original", "World", "f1#1")


async def test_same_feed_with_a_new_guid_updates(context: AppContext) -> None:
    await upsert(context, article("https://n.example/g", guid="f#1", feed_url="f"))
    await upsert(context, article("https://n.example/g", "Renamed", guid="f#2", feed_url="f"))
    [renamed] = await stored_articles(context)
    assert (renamed.guid, renamed.title) == ("f#2", "Renamed")


async def test_unknown_date_takes_now_then_keeps_the_stored_one(context: AppContext) -> None:
    await upsert(context, article("https://n.example/d", published_at=None))
    later = await upsert(
        context, article("https://n.example/d", published_at=None), now=NOW + timedelta(hours=3)
    )
    [dated] = await stored_articles(context)
    assert later.unchanged == 1 and dated.published_at == NOW


async def test_duplicates_within_one_batch(context: AppContext) -> None:
    counts = await upsert(
        context, article("https://n.example/b"), article("https://N.example/b?utm_medium=x", "Twice")
    )
    assert (counts.new, counts.updated) == (1, 1)
    assert counts.ids[0] == counts.ids[1]
    assert len(await stored_articles(context)) == 1


async def test_a_lost_insert_race_becomes_an_update(context: AppContext) -> None:
    """A second transaction inserting the same story waits for the first, then re-reads its row."""
    story = article("https://n.example/race", guid="urn:race")
    async with context.db.session() as first, first.begin():
        winner = await upsert_articles(first, [story], now=NOW)
        loser_task = asyncio.create_task(
            upsert(context, article("https://n.example/race", "Later", guid="urn:race"))
        )
        await _until_waiting_on_a_lock(context, loser_task)
    loser = await loser_task
    [row] = await stored_articles(context)
    assert winner.new == 1 and (loser.new, loser.updated) == (0, 1)
    assert loser.ids == winner.ids and row.title == "Later"


async def _until_waiting_on_a_lock(context: AppContext, task: asyncio.Task[UpsertCounts]) -> None:
    """On PostgreSQL, until the task's INSERT blocks on the first transaction's row; SQLite's
    BEGIN IMMEDIATE makes the task wait for the whole first transaction in any case."""
    if context.db.is_sqlite:
        await asyncio.sleep(0)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND query LIKE 'INSERT INTO articles%'"
    )
    deadline = time.monotonic() + 60  # a loaded machine can take seconds to get there
    async with context.db.engine.connect() as probe:
        while time.monotonic() < deadline:
            waiting = await probe.scalar(query)
            # pg_stat_activity is read once per transaction: a new one for each look.
            await probe.rollback()
            if waiting:
                return
            assert not task.done(), task
            await asyncio.sleep(0.01)
    raise AssertionError("the second insert never waited for the first")
