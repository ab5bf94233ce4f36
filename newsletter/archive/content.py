"""What an archive page shows: an edition's stories as its email has them, no reader in them.

The stories come from the same selection and the same views as the email's (lead first, grouped
by section in the newsletter's order), with times in the newsletter's timezone and article links
without UTM parameters (a web reader did not come from the email)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import NewsletterConfig, Settings
from newsletter.database.models import Edition
from newsletter.editions.selection import select_articles
from newsletter.rendering.content import ArticleView, article_view, date_label, group_by_section
from newsletter.rendering.digest import digest_subject


@dataclass(frozen=True)
class EditionContent:
    edition: Edition
    subject: str
    date_label: str
    lead: ArticleView | None
    sections: list[tuple[str, list[ArticleView]]]
    story_count: int

    @property
    def summary(self) -> str:
        """One line for the index, the feed and link previews."""
        if self.lead is None:
            return "No new stories in this edition."
        others = self.story_count - 1
        if others == 0:
            return self.lead.title
        return f"{self.lead.title}, and {others} more {'story' if others == 1 else 'stories'}."


async def edition_content(
    session: AsyncSession,
    settings: Settings,
    newsletter: NewsletterConfig,
    edition: Edition,
    chosen_sections: Sequence[str] = (),
) -> EditionContent:
    articles = await select_articles(
        session,
        newsletter,
        since=edition.since_at,
        until=edition.cutoff_at,
        sections=chosen_sections,
    )
    zone = ZoneInfo(newsletter.timezone)
    views = [article_view(article, zone, []) for article in articles]
    return EditionContent(
        edition=edition,
        subject=digest_subject(settings, newsletter, edition.edition_date),
        date_label=date_label(edition.edition_date),
        lead=views[0] if views else None,
        sections=group_by_section(views[1:], settings.sections_of(newsletter)),
        story_count=len(views),
    )
