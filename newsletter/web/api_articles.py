"""Admin API for articles: a CMS pushes one or many, scripts read recent ones back."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from newsletter.articles.inputs import MAX_ITEMS_PER_REQUEST, ArticleInput, ArticleRules, validate_articles
from newsletter.articles.metrics import count_outcomes
from newsletter.articles.queries import article_json, list_articles
from newsletter.articles.store import upsert_articles
from newsletter.database.engine import READ_ONLY
from newsletter.database.models import utcnow
from newsletter.moments import UtcMoment
from newsletter.web.auth import AdminDep
from newsletter.web.bodies import decode_json
from newsletter.web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/api/articles", tags=["articles"], dependencies=[AdminDep])

_ARTICLE_SCHEMA = ArticleInput.model_json_schema()
_BODY_SCHEMA = {
    "oneOf": [_ARTICLE_SCHEMA, {"type": "array", "items": _ARTICLE_SCHEMA, "maxItems": MAX_ITEMS_PER_REQUEST}]
}
_PUSH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid admin bearer token"},
    413: {"description": "the body is over server.max_body_bytes"},
    422: {"description": "an article is invalid; `field` names it, e.g. items[3].url"},
}


@router.post(
    "",
    summary="Add or update one article or a list of them (de-duplicated by guid, else canonical URL)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}
    },
    responses=_PUSH_RESPONSES,
)
async def push_articles(request: Request, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    body = decode_json(await request.body())
    rules = ArticleRules.from_settings(settings)
    # Sanitising up to 500 summaries is CPU work: keep it off the event loop.
    items = await asyncio.to_thread(validate_articles, body, rules)
    async with session.begin():
        counts = await upsert_articles(session, items, now=utcnow())
    count_outcomes("api", new=counts.new, updated=counts.updated, unchanged=counts.unchanged)
    return counts.as_dict()


@router.get("", summary="Recent articles, newest first", responses={401: _PUSH_RESPONSES[401]})
async def get_articles(
    session: SessionDep,
    since: Annotated[UtcMoment | None, Query(description="ISO 8601; without an offset, UTC")] = None,
    section: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    await session.connection(execution_options=READ_ONLY)
    articles = await list_articles(session, since=since, section=section, limit=limit)
    return {"articles": [article_json(article) for article in articles]}
