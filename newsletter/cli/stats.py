"""`newsletter stats`: what readers clicked, per edition or over a period."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    fail,
    load,
    parse_since,
    print_json,
    with_context,
)

if TYPE_CHECKING:
    from newsletter.engagement.stats import ArticleClicks, EditionStats

DEFAULT_DAYS = 7


def stats(
    edition: Annotated[int | None, typer.Option(help="One edition's clicks (see `editions list`).")] = None,
    since: Annotated[str | None, typer.Option(help="Top articles since (ISO date or time, UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Top articles shown.")] = 10,
    plot: Annotated[
        Path | None, typer.Option(help="With --edition: also write clicks per article as an SVG chart.")
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Readers' clicks: one edition's per article and section, or the most clicked over a period."""
    from newsletter.database.models import utcnow
    from newsletter.engagement import stats as engagement
    from newsletter.engagement.plot import clicks_svg

    settings = load(config)
    if edition is None:
        if plot is not None:
            fail("--plot: draws one edition's clicks; add --edition ID")
        start = parse_since(since) or utcnow() - timedelta(days=DEFAULT_DAYS)
        top = with_context(
            settings, lambda context: engagement.top_articles(context, since=start, limit=limit)
        )
        if json:
            print_json({"since": start.isoformat(), "articles": [vars(a) for a in top]})
            return
        _articles_table(f"Most clicked since {start:%Y-%m-%d %H:%M} UTC", top)
        return
    found = with_context(settings, lambda context: engagement.edition_stats(context, edition))
    if plot is not None:
        plot.write_text(clicks_svg(found), encoding="utf-8")
    if json:
        print_json(found.as_json())
        return
    _edition_summary(found)
    if plot is not None:
        console.print(f"chart written to {plot}", highlight=False)


def _edition_summary(found: EditionStats) -> None:
    rate = f"{found.click_rate:.1%}" if found.click_rate is not None else "–"
    console.print(
        f"edition {found.edition} of {found.newsletter} ({found.date}), tracking {found.tracking}: "
        f"{found.clicks} clicks by readers over {found.delivered} delivered (rate {rate})",
        highlight=False,
    )
    if found.readers_clicked is not None:
        console.print(
            f"readers who clicked: {found.readers_clicked}; opened (at least): {found.opened_at_least}",
            highlight=False,
        )
    if found.filtered:
        apart = ", ".join(f"{reason} {count}" for reason, count in found.filtered.items())
        console.print(f"counted apart: {apart}", highlight=False)
    _articles_table("Clicks per article", found.articles)
    if found.sections:
        console.print(
            "per section: " + ", ".join(f"{name} {count}" for name, count in found.sections.items()),
            highlight=False,
        )


def _articles_table(title: str, articles: list[ArticleClicks]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("clicks", "article", "section"):
        table.add_column(column)
    for article in articles:
        table.add_row(str(article.clicks), article.title, article.section)
    console.print(table)
