"""Render a digest or a confirmation once: Jinja2, then premailer; personal fields stay tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from newsletter.config import NewsletterConfig, Settings
from newsletter.database.models import Article
from newsletter.errors import RenderError
from newsletter.rendering.content import ArticleView, article_view, date_label, group_by_section
from newsletter.rendering.environment import make_environment
from newsletter.rendering.inline import inline_css
from newsletter.rendering.links import utm_parameters
from newsletter.rendering.placeholders import CONFIRMATION_FIELDS, DIGEST_FIELDS, PersonalTokens


class Tracking(Protocol):
    """How an edition's emails link to its articles when the newsletter counts clicks."""

    def link(self, article_id: int, reader: str) -> str: ...

    def pixel(self, reader: str) -> str: ...


@dataclass(frozen=True)
class RenderedEmail:
    """One edition variant (or the confirmation), ready to personalise: its personal fields
    are the `tokens` of this rendering."""

    subject: str
    html: str
    text: str
    tokens: PersonalTokens

    def filled_html(self, values: Mapping[str, str]) -> str:
        return self.tokens.fill_html(self.html, values)

    def filled_text(self, values: Mapping[str, str]) -> str:
        return self.tokens.fill_text(self.text, values)


class DigestRenderer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.environment = make_environment(settings)

    def render_digest(
        self,
        newsletter: NewsletterConfig,
        edition_date: date,
        articles: Sequence[Article],
        *,
        timezone: str | None = None,
        view_url: str = "",
        tracking: Tracking | None = None,
    ) -> RenderedEmail:
        """Articles lead first; none renders the short "no new stories" digest. Times are shown
        in `timezone` (the readers' of this variant), else the newsletter's; `view_url` is the
        edition's page in the web archive ("": no "View in your browser" link). CPU-heavy
        (premailer, ~25 ms): callers inside the service run it in a thread."""
        tokens = PersonalTokens.fresh()
        values = self.digest_context(
            newsletter, edition_date, articles, tokens, timezone=timezone, tracking=tracking
        )
        values["view_url"] = view_url
        return self._render("digest", values["subject"], values, tokens)

    def digest_context(
        self,
        newsletter: NewsletterConfig,
        edition_date: date,
        articles: Sequence[Article],
        tokens: PersonalTokens,
        *,
        timezone: str | None = None,
        tracking: Tracking | None = None,
    ) -> dict[str, Any]:
        """What the digest templates see; the personal fields are `tokens`. With `tracking`,
        article links go through its redirects (the reader's tag a personal field)."""
        zone = reader_zone(newsletter, timezone)
        utm = utm_parameters(newsletter)
        views = [article_view(article, zone, utm) for article in articles]
        reader = tokens.token("reader_tag")
        pixel = ""
        if tracking is not None:
            views = [
                replace(view, url=tracking.link(article.id, reader)) if view.url else view
                for view, article in zip(views, articles, strict=True)
            ]
            pixel = tracking.pixel(reader)
        lead = views[0] if views else None
        return {
            **self._common(digest_subject(self.settings, newsletter, edition_date)),
            "newsletter": newsletter,
            "date_label": date_label(edition_date),
            "lead": lead,
            "sections": group_by_section(views[1:], self.settings.sections_of(newsletter)),
            "story_count": len(views),
            "preheader": _preheader(lead, len(views), self.settings.site.name),
            "open_pixel_url": pixel,
            **tokens.placeholders(DIGEST_FIELDS),
        }

    def render_confirmation(self, newsletter: NewsletterConfig | None) -> RenderedEmail:
        """The double opt-in email; `confirm_url` and `email` stay tokens."""
        list_name = newsletter.name if newsletter is not None else self.settings.site.name
        subject = f"Confirm your subscription to {list_name}"
        tokens = PersonalTokens.fresh()
        values: dict[str, Any] = {
            **self._common(subject),
            "list_name": list_name,
            "description": newsletter.description if newsletter is not None else "",
            "max_age_days": self.settings.security.confirm_max_age_days,
            "preheader": f"One click to start receiving {list_name}.",
            **tokens.placeholders(CONFIRMATION_FIELDS),
        }
        return self._render("confirmation", subject, values, tokens)

    def _common(self, subject: str) -> dict[str, Any]:
        return {"site": self.settings.site, "subject": subject}

    def _render(
        self, name: str, subject: str, values: dict[str, Any], tokens: PersonalTokens
    ) -> RenderedEmail:
        """RenderError names the template when one cannot be rendered (an operator's own
        template using a name that does not exist, a syntax error)."""
        pages = {}
        for suffix in ("html", "txt"):
            try:
                pages[suffix] = self.environment.get_template(f"{name}.{suffix}").render(values)
            except jinja2.TemplateError as exc:
                raise RenderError(f"template {name}.{suffix}: {exc.message or type(exc).__name__}") from exc
        return RenderedEmail(
            subject=subject, html=inline_css(pages["html"]), text=_tidy_text(pages["txt"]), tokens=tokens
        )


def reader_zone(newsletter: NewsletterConfig, timezone: str | None) -> ZoneInfo:
    """The reader's timezone; the newsletter's when unknown or no longer in tzdata."""
    try:
        return ZoneInfo(timezone or newsletter.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(newsletter.timezone)


def digest_subject(settings: Settings, newsletter: NewsletterConfig, edition_date: date) -> str:
    subject = newsletter.subject.format(
        name=newsletter.name, site=settings.site.name, date=date_label(edition_date)
    )
    return " ".join(subject.split())


def _preheader(lead: ArticleView | None, count: int, site_name: str) -> str:
    if lead is None:
        return f"No new stories today from {site_name}."
    others = count - 1
    if others == 0:
        return lead.title
    return f"{lead.title}, and {others} more {'story' if others == 1 else 'stories'}."


def _tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip("\n") + "\n"
