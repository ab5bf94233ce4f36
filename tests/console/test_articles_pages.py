"""The console's articles page: listing and searching, adding by hand, hiding and pinning."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Article, AuditEvent, EditionVariant, utcnow
from newsletter.editions.service import start_edition
from tests.conftest import SettingsFactory
from tests.console.helpers import Client, audit_actions, csrf_of, log_in
from tests.support.factories import SECTIONS, add_articles, add_subscribers


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings(site={"sections": list(SECTIONS)})


async def _logged_in(browser: Client, name: str) -> tuple[httpx.AsyncClient, str]:
    client = browser()
    assert (await log_in(client, name)).status_code == 303
    page = await client.get("/admin/articles")
    assert page.status_code == 200
    return client, csrf_of(page)


async def _article(context: AppContext, article_id: int) -> Article:
    async with context.db.session() as session:
        found = await session.get(Article, article_id)
    assert found is not None
    return found


async def _count(context: AppContext) -> int:
    async with context.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Article)) or 0)


async def _add_titled(context: AppContext, *titles: str, section: str = "World") -> list[int]:
    """One article per title, each a minute older than the one added before it."""
    now = utcnow()
    async with context.db.session() as session:
        older = int(await session.scalar(select(func.count()).select_from(Article)) or 0)
        rows = [
            Article(
                canonical_url=f"https://paper.example/{older + n}",
                url=f"https://paper.example/{older + n}",
                title=title,
                summary="",
                section=section,
                published_at=now - timedelta(minutes=older + n),
                content_hash=f"h{n}",
            )
            for n, title in enumerate(titles)
        ]
        session.add_all(rows)
        await session.commit()
        return [row.id for row in rows]


def _titles(page: httpx.Response) -> list[str]:
    return re.findall(r'rel="noopener noreferrer">([^<]+)</a>', page.text)


async def test_the_page_lists_the_newest_first_and_searches_titles_and_sections(
    browser: Client, context: AppContext
) -> None:
    await _add_titled(
        context, "Storm floods the valley", "Markets rally on rate cut", "Valley storm: the cleanup"
    )
    await _add_titled(context, "Budget vote tonight", section="Politics")
    viewer, _ = await _logged_in(browser, "vera")
    page = await viewer.get("/admin/articles")
    assert _titles(page) == [
        "Storm floods the valley",
        "Markets rally on rate cut",
        "Valley storm: the cleanup",
        "Budget vote tonight",
    ]
    assert 'href="https://paper.example/0" rel="noopener noreferrer"' in page.text
    assert 'aria-current="page">Articles' in page.text
    found = await viewer.get("/admin/articles", params={"q": "STORM valley"})
    assert _titles(found) == ["Storm floods the valley", "Valley storm: the cleanup"]
    assert 'value="STORM valley"' in found.text
    politics = await viewer.get("/admin/articles", params={"section": "Politics"})
    assert _titles(politics) == ["Budget vote tonight"]
    # LIKE's own wildcards are searched for as text.
    assert _titles(await viewer.get("/admin/articles", params={"q": "%"})) == []
    unknown = await viewer.get("/admin/articles", params={"section": "Gossip"})
    assert unknown.status_code == 422 and "Section: choose one" in unknown.text and not _titles(unknown)
    control = await viewer.get("/admin/articles", params={"q": "storm\x00"})
    assert control.status_code == 422 and "Words: must not contain" in control.text and not _titles(control)


async def test_pages_go_older_by_published_time_then_id(browser: Client, context: AppContext) -> None:
    moment = utcnow() - timedelta(hours=1)
    async with context.db.session() as session:
        session.add_all(
            Article(
                canonical_url=f"https://paper.example/same/{n}",
                url=f"https://paper.example/same/{n}",
                title=f"Same minute {n}",
                summary="",
                section="World",
                published_at=moment,  # one time for all: the id orders them
                content_hash=f"s{n}",
            )
            for n in range(55)
        )
        await session.commit()
    viewer, _ = await _logged_in(browser, "vera")
    first = await viewer.get("/admin/articles")
    older = re.search(r'href="(/admin/articles\?[^"]+)">Older articles', first.text)
    assert older is not None
    second = await viewer.get(older.group(1).replace("&amp;", "&"))
    shown = _titles(first) + _titles(second)
    assert len(_titles(first)) == 50 and len(shown) == 55
    assert shown == [f"Same minute {n}" for n in range(54, -1, -1)]
    assert "Older articles" not in second.text


async def test_an_editor_adds_an_article_by_hand(browser: Client, context: AppContext) -> None:
    editor, token = await _logged_in(browser, "eddie")
    form = {
        "csrf": token,
        "title": "  Late   news from the coast ",
        "url": "https://paper.example/late",
        "summary": "<p>Waves <script>alert(1)</script>and wind.</p>",
        "section": "Energy",
        "published_at": "2026-12-08T09:30",
    }
    answer = await editor.post("/admin/articles", data=form)
    assert answer.status_code == 303
    article_id = int(answer.headers["location"].rsplit("#article-", 1)[1])
    assert answer.headers["location"].startswith("/admin/articles?done=add")
    article = await _article(context, article_id)
    assert (article.title, article.url, article.section) == (
        "Late news from the coast",
        "https://paper.example/late",
        "Energy",
    )
    assert "script" not in article.summary and "Waves" in article.summary  # the API's own tidying
    assert article.published_at.isoformat() == "2026-12-08T09:30:00+00:00"
    shown = await editor.get(answer.headers["location"])
    assert "Article added." in shown.text and "Late news from the coast" in shown.text
    now = utcnow()
    await editor.post(
        "/admin/articles", data={**form, "url": "https://paper.example/now", "published_at": ""}
    )
    async with context.db.session() as session:
        fresh = await session.scalar(select(Article).where(Article.url == "https://paper.example/now"))
    assert fresh is not None and abs(fresh.published_at - now) < timedelta(minutes=1)
    assert ("eddie", "article.add", f"article {article_id}") in await audit_actions(context)
    async with context.db.session() as session:
        detail = await session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "article.add"))
    assert detail == "Late news from the coast"


BAD_INPUT = [
    ("url", "javascript:alert(1)", "URL: must be an absolute http(s) URL"),
    ("url", "ftp://paper.example/file", "URL: must be an absolute http(s) URL"),
    ("url", "https://paper.example/0", "URL: article #"),
    ("title", "   ", "Title: must not be empty"),
    ("section", "Gossip", "Section: choose one of the sections listed"),
    ("published_at", "yesterday", "Published:"),
]


async def test_bad_input_names_the_field_and_adds_nothing(browser: Client, context: AppContext) -> None:
    await _add_titled(context, "Already here")
    editor, token = await _logged_in(browser, "eddie")
    form = {"csrf": token, "title": "A fine title", "url": "https://paper.example/new", "section": "World"}
    for field, value, said in BAD_INPUT:
        answer = await editor.post("/admin/articles", data={**form, field: value})
        assert answer.status_code == 422, field
        assert said in answer.text and 'role="alert"' in answer.text, said
        assert 'value="A fine title"' in answer.text or field == "title"  # the form as it was posted
        (marked,) = re.findall(r'<(?:input|select|textarea) [^>]*aria-invalid="true"[^>]*>', answer.text)
        assert f'id="{field}"' in marked
    assert await _count(context) == 1
    assert not [a for a in await audit_actions(context) if a[1].startswith("article.")]


async def test_a_viewer_sees_no_form_and_may_change_nothing(browser: Client, context: AppContext) -> None:
    (article_id,) = await _add_titled(context, "Quiet day")
    viewer, token = await _logged_in(browser, "vera")
    page = await viewer.get("/admin/articles")
    assert "Quiet day" in page.text
    assert 'method="post" action="/admin/articles' not in page.text and "Add an article" not in page.text
    added = await viewer.post(
        "/admin/articles", data={"csrf": token, "title": "Mine", "url": "https://paper.example/v"}
    )
    assert added.status_code == 403 and "viewer" in added.text
    for action in ("hide", "unhide", "pin", "unpin"):
        answer = await viewer.post(f"/admin/articles/{article_id}/{action}", data={"csrf": token})
        assert answer.status_code == 403, action
    article = await _article(context, article_id)
    assert article.hidden_at is None and article.pinned_at is None and await _count(context) == 1
    assert not [a for a in await audit_actions(context) if a[1].startswith("article.")]


async def test_forms_without_this_sessions_token_change_nothing(browser: Client, context: AppContext) -> None:
    (article_id,) = await _add_titled(context, "Quiet day")
    editor, _ = await _logged_in(browser, "eddie")
    _, theirs = await _logged_in(browser, "olivia")
    form = {"title": "Forged", "url": "https://paper.example/forged", "section": "World"}
    for token in ({}, {"csrf": ""}, {"csrf": theirs}):
        assert (await editor.post("/admin/articles", data={**form, **token})).status_code == 403
        for action in ("hide", "pin"):
            answer = await editor.post(f"/admin/articles/{article_id}/{action}", data=token)
            assert answer.status_code == 403, (action, token)
    article = await _article(context, article_id)
    assert article.hidden_at is None and article.pinned_at is None and await _count(context) == 1
    assert not [a for a in await audit_actions(context) if a[1].startswith("article.")]


async def test_unknown_articles_and_actions_are_404(browser: Client, context: AppContext) -> None:
    owner, token = await _logged_in(browser, "olivia")
    assert (await owner.post("/admin/articles/999999/hide", data={"csrf": token})).status_code == 404
    (article_id,) = await _add_titled(context, "Quiet day")
    assert (
        await owner.post(f"/admin/articles/{article_id}/explode", data={"csrf": token})
    ).status_code == 404
    assert not [a for a in await audit_actions(context) if a[1].startswith("article.")]


async def _edition_articles(context: AppContext, edition_id: int) -> list[int]:
    """The articles of the edition's one variant, lead first ([] when it has none)."""
    async with context.db.session() as session:
        variants = (
            await session.scalars(
                select(EditionVariant.article_ids).where(EditionVariant.edition_id == edition_id)
            )
        ).all()
    assert len(variants) <= 1
    return list(json.loads(variants[0])) if variants else []


async def test_a_hidden_article_is_left_out_of_the_next_edition(browser: Client, context: AppContext) -> None:
    ids = await add_articles(context, 6)
    await add_subscribers(context, 3)
    editor, token = await _logged_in(browser, "eddie")
    hidden = ids[2]
    answer = await editor.post(
        f"/admin/articles/{hidden}/hide", data={"csrf": token, "back": "?q=Story&section=Nowhere"}
    )
    # Back to the listing it came from, with only what is still valid in it.
    assert answer.status_code == 303 and answer.headers["location"] == (
        f"/admin/articles?q=Story&done=hide#article-{hidden}"
    )
    page = await editor.get(answer.headers["location"])
    assert "Hidden: no edition selected from now on carries it." in page.text
    assert f"Show again: {(await _article(context, hidden)).title}" in page.text
    edition = await start_edition(context, "daily")
    carried = await _edition_articles(context, edition.id)
    assert hidden not in carried and sorted(carried) == sorted(set(ids) - {hidden})
    shown = await editor.post(f"/admin/articles/{hidden}/unhide", data={"csrf": token})
    assert shown.status_code == 303 and (await _article(context, hidden)).hidden_at is None
    assert hidden not in await _edition_articles(context, edition.id)  # a built edition stays as it was
    recorded = await audit_actions(context)
    assert ("eddie", "article.hide", f"article {hidden}") in recorded
    assert ("eddie", "article.unhide", f"article {hidden}") in recorded


async def test_a_pinned_older_article_leads_the_next_edition_once(
    browser: Client, context: AppContext
) -> None:
    (old,) = await _add_titled(context, "Last week's big interview")
    async with context.db.session() as session:
        article = await session.get(Article, old)
        assert article is not None
        article.published_at = utcnow() - timedelta(days=7)  # far outside the edition's window
        await session.commit()
    ids = await add_articles(context, 6)  # the first has a picture: it would lead otherwise
    await add_subscribers(context, 3)
    editor, token = await _logged_in(browser, "eddie")
    pinned = await editor.post(f"/admin/articles/{old}/pin", data={"csrf": token})
    assert pinned.status_code == 303
    page = await editor.get(pinned.headers["location"])
    assert "The Daily Briefing: leads the next edition" in page.text and "Unpin: Last week" in page.text
    edition = await start_edition(context, "daily")
    carried = await _edition_articles(context, edition.id)
    assert carried[0] == old and carried[1] == ids[0] and len(carried) == 7
    page = await editor.get("/admin/articles")
    assert f"The Daily Briefing: led edition #{edition.id}; pin used" in page.text
    # Nothing new since: the pin, used, does not make the next edition on its own.
    following = await start_edition(context, "daily", new=True)
    assert await _edition_articles(context, following.id) == []
    unpinned = await editor.post(f"/admin/articles/{old}/unpin", data={"csrf": token})
    assert unpinned.status_code == 303 and (await _article(context, old)).pinned_at is None
    recorded = await audit_actions(context)
    assert ("eddie", "article.pin", f"article {old}") in recorded
    assert ("eddie", "article.unpin", f"article {old}") in recorded
    async with context.db.session() as session:
        details = set(
            (
                await session.scalars(select(AuditEvent.detail).where(AuditEvent.target == f"article {old}"))
            ).all()
        )
    assert details == {"Last week's big interview"}


async def test_the_owner_may_do_what_an_editor_does(browser: Client, context: AppContext) -> None:
    (article_id,) = await _add_titled(context, "Quiet day")
    owner, token = await _logged_in(browser, "olivia")
    assert 'action="/admin/articles"' in (await owner.get("/admin/articles")).text
    assert (await owner.post(f"/admin/articles/{article_id}/pin", data={"csrf": token})).status_code == 303
    assert (await _article(context, article_id)).pinned_at is not None
    assert ("olivia", "article.pin", f"article {article_id}") in await audit_actions(context)
