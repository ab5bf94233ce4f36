"""Storing articles once each (by guid, else canonical URL), the feeds' fetch state, and reading back.

De-duplication rules:
- an item whose guid is stored updates that article; its URL moves along unless another article
  already has the new canonical URL, in which case the URL is left alone;
- else an item whose canonical URL is stored is the same story: it updates that article when
  the article has no guid, the item has none, or both come from the same feed; a copy of another
  feed's story (its own guid) changes nothing;
- content_hash over the stored fields decides updated against unchanged;
- items new to the table go in one multi-row INSERT; inserts run in a SAVEPOINT, and losing a race
  to a concurrent ingest (IntegrityError) falls back to one item at a time, where the loser
  re-reads the winner's row and carries on as an update.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.articles.clean import canonical_url, truncate_text
from newsletter.articles.inputs import TITLE_COLUMN, ArticleInput
from newsletter.database.models import Article

_CHUNK = 500


@dataclass
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    ids: list[int] = field(default_factory=list)  # one per item, in order

    def as_dict(self) -> dict[str, Any]:
        return {"new": self.new, "updated": self.updated, "unchanged": self.unchanged, "ids": self.ids}


@dataclass
class _Index:
    by_guid: dict[str, Article] = field(default_factory=dict)
    by_url: dict[str, Article] = field(default_factory=dict)

    def add(self, article: Article) -> None:
        if article.guid:
            self.by_guid[article.guid] = article
        self.by_url[article.canonical_url] = article


async def upsert_articles(
    session: AsyncSession, items: Sequence[ArticleInput], *, now: datetime
) -> UpsertCounts:
    """Insert or update each (tidy) item within the caller's transaction; commits nothing."""
    index = await _load_index(session, items)
    inserted = await _insert_unseen(session, index, items, now)
    counts = UpsertCounts(new=len(inserted))
    for position, item in enumerate(items):
        article = inserted.get(position)
        if article is None:
            outcome, article = await _upsert_one(session, index, item, now)
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        counts.ids.append(article.id)
    return counts


async def _insert_unseen(
    session: AsyncSession, index: _Index, items: Sequence[ArticleInput], now: datetime
) -> dict[int, Article]:
    """The common case in one multi-row INSERT: items matching nothing stored nor an earlier item.
    Should a concurrent ingest have inserted one of them meanwhile, nothing is inserted here and
    every item goes the one-by-one way, which handles that race."""
    fresh: dict[int, Article] = {}
    batch = _Index()
    for position, item in enumerate(items):
        canonical = canonical_url(item.url)
        keys_seen = (item.guid and (item.guid in index.by_guid or item.guid in batch.by_guid)) or (
            canonical in index.by_url or canonical in batch.by_url
        )
        if not keys_seen:
            fresh[position] = _new_article(item, canonical, now)
            batch.add(fresh[position])
    if not fresh:
        return {}
    try:
        async with session.begin_nested():
            session.add_all(fresh.values())
            await session.flush()
    except IntegrityError:
        return {}
    for article in fresh.values():
        index.add(article)
    return fresh


async def _load_index(session: AsyncSession, items: Sequence[ArticleInput]) -> _Index:
    index = _Index()
    guids = sorted({item.guid for item in items if item.guid})
    urls = sorted({canonical_url(item.url) for item in items})
    for column, keys in ((Article.guid, guids), (Article.canonical_url, urls)):
        for start in range(0, len(keys), _CHUNK):
            for article in await session.scalars(
                select(Article).where(column.in_(keys[start : start + _CHUNK]))
            ):
                index.add(article)
    return index


async def _upsert_one(
    session: AsyncSession, index: _Index, item: ArticleInput, now: datetime
) -> tuple[str, Article]:
    canonical = canonical_url(item.url)
    article = index.by_guid.get(item.guid) if item.guid else None
    by_guid = article is not None
    if article is None:
        article = index.by_url.get(canonical)
    if article is None:
        inserted = await _insert(session, item, canonical, now)
        if inserted is not None:
            index.add(inserted)
            return "new", inserted
        article, by_guid = await _reread(session, item.guid, canonical)
        index.add(article)
    if not by_guid and not _same_source(article, item):
        return "unchanged", article
    changed = await _update(session, index, article, item, canonical, now)
    return ("updated" if changed else "unchanged"), article


def _same_source(article: Article, item: ArticleInput) -> bool:
    return article.guid is None or item.guid is None or article.feed_url == item.feed_url


def _new_article(item: ArticleInput, canonical: str, now: datetime) -> Article:
    values = _stored_values(item, item.url, item.published_at or now)
    return Article(
        guid=item.guid,
        canonical_url=canonical,
        feed_url=item.feed_url,
        content_hash=_content_hash(values),
        created_at=now,
        updated_at=now,
        **values,
    )


async def _insert(session: AsyncSession, item: ArticleInput, canonical: str, now: datetime) -> Article | None:
    article = _new_article(item, canonical, now)
    try:
        async with session.begin_nested():
            session.add(article)
            await session.flush()
    except IntegrityError:
        return None
    return article


async def _reread(session: AsyncSession, guid: str | None, canonical: str) -> tuple[Article, bool]:
    """After losing an insert race: the row that won, preferring the guid's."""
    condition = Article.canonical_url == canonical
    if guid:
        condition = or_(Article.guid == guid, condition)
    rows = list(
        await session.scalars(select(Article).where(condition).execution_options(populate_existing=True))
    )
    for row in rows:
        if guid and row.guid == guid:
            return row, True
    if not rows:
        raise LookupError(f"article {guid or canonical} vanished after a unique-constraint conflict")
    return rows[0], False


async def _update(
    session: AsyncSession, index: _Index, article: Article, item: ArticleInput, canonical: str, now: datetime
) -> bool:
    """Bring the article in line with the item; True when its content changed."""
    previous_hash, previous_canonical = article.content_hash, article.canonical_url
    url = item.url
    holder = index.by_url.get(canonical)
    if canonical != previous_canonical and holder is not None and holder is not article:
        url, canonical = article.url, previous_canonical  # another article has that URL
    values = _stored_values(item, url, item.published_at or article.published_at)
    guid = (
        item.guid
        if item.guid and (article.guid is None or article.feed_url == item.feed_url)
        else article.guid
    )
    changes = {**values, "canonical_url": canonical, "guid": guid, "content_hash": _content_hash(values)}
    if changes["content_hash"] == previous_hash and guid == article.guid:
        return False
    if item.feed_url:
        changes["feed_url"] = item.feed_url
    try:
        async with session.begin_nested():
            _apply(article, changes)
            await session.flush()
    except IntegrityError:
        # A concurrent ingest took the new URL or guid first: keep ours as they were.
        await session.refresh(article)
        kept = {**values, "url": article.url}
        changes.update(url=article.url, canonical_url=article.canonical_url, guid=article.guid)
        changes["content_hash"] = _content_hash(kept)
        _apply(article, changes)
        await session.flush()
    if index.by_url.get(previous_canonical) is article and article.canonical_url != previous_canonical:
        del index.by_url[previous_canonical]
    index.add(article)
    if article.content_hash == previous_hash:
        return False
    article.updated_at = now
    return True


def _apply(article: Article, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(article, name, value)


def _stored_values(item: ArticleInput, url: str, published_at: datetime) -> dict[str, Any]:
    return {
        "title": truncate_text(item.title, TITLE_COLUMN),
        "url": url,
        "summary": item.summary,
        "author": item.author,
        "section": item.section,
        "image_url": item.image_url,
        "published_at": published_at,
    }


def _content_hash(values: dict[str, Any]) -> str:
    fields = [values[name] for name in ("title", "url", "summary", "author", "section", "image_url")]
    fields.append(values["published_at"].isoformat())
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
