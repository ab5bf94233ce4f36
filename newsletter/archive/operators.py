"""What operators do with the archive: take an edition down, or put it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from newsletter.archive import store
from newsletter.context import AppContext
from newsletter.database.models import Edition, utcnow
from newsletter.logs import get_logger
from newsletter.rendering.archive_links import ArchiveLinks

log = get_logger(__name__)


@dataclass(frozen=True)
class ArchiveState:
    edition: int
    newsletter: str
    date: str
    # On the web now: published, and the newsletter's archive is not off.
    published: bool
    unpublished_at: datetime | None
    # The page's address (with its key, for a private archive); None while not published.
    url: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "edition": self.edition,
            "newsletter": self.newsletter,
            "date": self.date,
            "published": self.published,
            "unpublished_at": self.unpublished_at.isoformat() if self.unpublished_at else None,
            "url": self.url,
        }


async def unpublish(context: AppContext, edition_id: int) -> ArchiveState:
    """Take an edition off the archive: its page, its index row and its feed entry."""
    return await _set(context, edition_id, utcnow())


async def republish(context: AppContext, edition_id: int) -> ArchiveState:
    """Put an edition taken down back (it shows again if it is otherwise published)."""
    return await _set(context, edition_id, None)


async def _set(context: AppContext, edition_id: int, when: datetime | None) -> ArchiveState:
    async with context.db.session() as session:
        edition = await store.set_unpublished(session, edition_id, when)
        shown = await session.scalar(select(store.is_published()).where(Edition.id == edition_id))
    # An edition of a newsletter no longer configured has no archive to show it in.
    newsletter = next((n for n in context.settings.newsletters if n.id == edition.newsletter_id), None)
    published = bool(shown) and newsletter is not None and newsletter.archive != "off"
    url = None
    if published and newsletter is not None:
        links = ArchiveLinks(context.settings)
        url = links.edition_url(newsletter, edition.id, edition.edition_date, edition.sequence)
    log.info("archive.unpublished" if when else "archive.republished", edition=edition_id)
    return ArchiveState(
        edition=edition.id,
        newsletter=edition.newsletter_id,
        date=edition.edition_date.isoformat(),
        published=published,
        unpublished_at=edition.unpublished_at,
        url=url,
    )
