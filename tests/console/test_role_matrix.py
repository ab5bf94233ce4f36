"""Every console route, as each role: allowed is never a 403 (nor a 500), refused is a 403 that
changes nothing; the forms are posted with the session's own CSRF token and harmless values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from newsletter.context import AppContext
from newsletter.database.models import Article, AuditEvent, Edition, EditionVariant, Subscriber
from newsletter.editions.builder import build_edition
from newsletter.rendering import DigestRenderer
from tests.console.helpers import Client, csrf_of, log_in

RANK = {"vera": 0, "eddie": 1, "olivia": 2}  # viewer, editor, owner
VIEWER, EDITOR, OWNER = 0, 1, 2

SEEN_BY_ALL = ["", "/editions", "/editions/{e}", "/editions/{e}/preview", "/articles", "/subscribers"]
SEEN_BY_ALL += ["/subscribers/{s}", "/bounces", "/suppressions", "/engagement"]
OWNERS_ONLY = ["/subscribers/import", "/subscribers/{s}/erase", "/subscribers/export", "/accounts"]
OWNERS_ONLY += ["/settings", "/audit"]
PAGES = [(f"/admin{p}", VIEWER) for p in SEEN_BY_ALL] + [(f"/admin{p}", OWNER) for p in OWNERS_ONLY]
# Values that make an allowed post refuse itself (422) or change nothing that matters here.
FORMS = [
    ("/admin/editions/{e}/variants/{v}/test", EDITOR, {"email": "not an address"}),
    ("/admin/articles", EDITOR, {"title": "", "url": "ftp://nowhere"}),
    ("/admin/articles/{a}/hide", EDITOR, {}),
    ("/admin/editions/{e}/pause", EDITOR, {}),
    ("/admin/subscribers", OWNER, {"email": "not an address"}),
    ("/admin/subscribers/{s}/erase", OWNER, {}),
    ("/admin/suppressions", OWNER, {"email": "not an address"}),
    ("/admin/suppressions/remove", OWNER, {"email": "nobody@nowhere.example"}),
    ("/admin/accounts", OWNER, {"name": "x", "password": "short", "password_again": "short"}),
    ("/admin/accounts/vera/password", OWNER, {"password": "one long password", "password_again": "another"}),
    ("/admin/accounts/vera/remove", OWNER, {"confirm": "not vera"}),
]


@pytest.fixture
async def ids(context: AppContext, edition_for: Callable[..., Awaitable[Edition]]) -> dict[str, int]:
    edition = await edition_for(2)
    await build_edition(context, edition.id, DigestRenderer(context.settings))
    async with context.db.session() as session:
        variant = await session.scalar(
            select(EditionVariant.id).where(EditionVariant.edition_id == edition.id)
        )
        article = await session.scalar(select(func.min(Article.id)))
        reader = await session.scalar(select(func.min(Subscriber.id)))
    assert variant and article and reader
    return {"e": edition.id, "v": variant, "a": article, "s": reader}


@pytest.mark.parametrize("name", list(RANK))
async def test_each_role_gets_what_it_may_and_a_403_for_the_rest(
    browser: Client, context: AppContext, ids: dict[str, int], name: str
) -> None:
    client = browser()
    await log_in(client, name)
    token = csrf_of(await client.get("/admin"))
    for path, needed in PAGES:
        answer = await client.get(path.format(**ids))
        expected = 200 if RANK[name] >= needed else 403
        assert answer.status_code == expected, (name, path, answer.status_code)
    for path, needed, form in FORMS:
        before = await _trail(context)
        answer = await client.post(path.format(**ids), data={"csrf": token, **form})
        if RANK[name] >= needed:
            assert answer.status_code not in (403,) and answer.status_code < 500, (
                name,
                path,
                answer.status_code,
            )
        else:
            assert answer.status_code == 403, (name, path, answer.status_code)
            assert await _trail(context) == before, (name, path)


async def _trail(context: AppContext) -> int:
    async with context.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
