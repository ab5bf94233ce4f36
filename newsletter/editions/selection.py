"""Which articles an edition carries, for a newsletter and a reader's sections."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import NewsletterConfig
from newsletter.database.models import Article, Edition


def effective_sections(newsletter: NewsletterConfig, chosen: Sequence[str]) -> list[str]:
    """A reader's own choice if any, else the newsletter's sections; [] means every section."""
    return sorted(set(chosen)) if chosen else sorted(set(newsletter.sections))


def narrowed(newsletter: NewsletterConfig, chosen: Sequence[str]) -> list[str]:
    """The sections a reader's choice keeps, or [] when it keeps the whole edition."""
    wanted = effective_sections(newsletter, chosen)
    return [] if wanted == effective_sections(newsletter, ()) else wanted


async def window_start(
    session: AsyncSession, newsletter: NewsletterConfig, now: datetime, *, before_edition: int | None = None
) -> datetime:
    """Articles published after the previous edition's cut-off; the first edition looks back
    `lookback_hours`. An edition never reaches further back than `lookback_hours` either, so a
    newsletter resumed after a long pause does not send a month of news at once."""
    query = select(Edition.cutoff_at).where(Edition.newsletter_id == newsletter.id)
    if before_edition is not None:
        query = query.where(Edition.id < before_edition)
    previous = await session.scalar(query.order_by(Edition.cutoff_at.desc()).limit(1))
    earliest = now - timedelta(hours=newsletter.lookback_hours)
    return max(previous, earliest) if previous is not None else earliest


async def select_articles(
    session: AsyncSession,
    newsletter: NewsletterConfig,
    *,
    since: datetime,
    until: datetime,
    sections: Sequence[str] = (),
) -> list[Article]:
    """Newest first, at most `max_articles`, lead story first: the pinned article (pinned_lead),
    else the newest with an image, else the newest. Hidden articles are left out."""
    query = (
        select(Article)
        .where(Article.published_at > since, Article.published_at <= until, Article.hidden_at.is_(None))
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(newsletter.max_articles)
    )
    wanted = effective_sections(newsletter, sections)
    if wanted:
        query = query.where(Article.section.in_(wanted))
    articles = list((await session.scalars(query)).all())
    pinned = await pinned_lead(session, newsletter, since=since, until=until)
    if pinned is None or (wanted and pinned.section not in wanted):
        return lead_first(articles)
    rest = [article for article in articles if article.id != pinned.id][: newsletter.max_articles - 1]
    return [pinned, *lead_first(rest)]


async def pinned_lead(
    session: AsyncSession, newsletter: NewsletterConfig, *, since: datetime, until: datetime
) -> Article | None:
    """The article pinned most recently within the edition's window, if it is in the
    newsletter's sections and not hidden, whenever it was published.

    So a pin leads the next edition of each newsletter, once: the window of the edition after
    that starts where this one was cut off. Nothing is cleared when an edition is built, so
    building it again, previewing it or showing it in the archive gives the same lead."""
    query = (
        select(Article)
        .where(
            Article.pinned_at > since,
            Article.pinned_at <= until,
            Article.published_at <= until,
            Article.hidden_at.is_(None),
        )
        .order_by(Article.pinned_at.desc(), Article.id.desc())
        .limit(1)
    )
    wanted = effective_sections(newsletter, ())
    if wanted:
        query = query.where(Article.section.in_(wanted))
    pinned: Article | None = await session.scalar(query)
    return pinned


def lead_first(articles: list[Article]) -> list[Article]:
    for index, article in enumerate(articles):
        if article.image_url:
            return [article, *articles[:index], *articles[index + 1 :]]
    return articles
