"""`newsletter ingest` and `newsletter articles list|add`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape as _escape

from newsletter.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    ConfigOption,
    JsonOption,
    console,
    errors,
    fail,
    load,
    parse_since,
    print_json,
    with_context,
)
from newsletter.errors import InvalidInput

if TYPE_CHECKING:
    from newsletter.articles.ingest import FeedReport
    from newsletter.config import FeedConfig, Settings
    from newsletter.context import AppContext

app = typer.Typer(help="Articles: list what is stored, add one by hand.", no_args_is_help=True)

# The option that sets each field of an article, for error messages.
_OPTION_OF = {"published_at": "--published", "image_url": "--image"}


def ingest(
    feed: Annotated[
        str | None,
        typer.Option("--feed", help="Only this feed: a configured one, or any URL or file path (ad hoc)."),
    ] = None,
    allow_private: Annotated[
        bool,
        typer.Option("--allow-private", help="An ad hoc --feed URL may be on a private or loopback address."),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch the configured feeds (or one) now and store their articles."""
    from newsletter.articles.ingest import ingest_feeds

    settings = load(config)
    feeds = _chosen_feeds(settings, feed, allow_private=allow_private)

    async def work(context: AppContext) -> list[FeedReport]:
        return await ingest_feeds(context, feeds)

    reports = with_context(settings, work)
    if as_json:
        print_json([report.as_dict() for report in reports])
    else:
        _print_reports(reports)
    raise typer.Exit(EXIT_FAILED if any(report.failed for report in reports) else EXIT_OK)


def _chosen_feeds(settings: Settings, wanted: str | None, *, allow_private: bool) -> list[FeedConfig]:
    from pydantic import ValidationError

    from newsletter.config import FeedConfig

    if wanted is None:
        if not settings.feeds:
            fail("no feeds configured: add [[feeds]] entries to the configuration, or pass --feed")
        return list(settings.feeds)
    for feed in settings.feeds:
        if wanted in (feed.url, feed.name) or (not feed.is_remote and _same_path(feed.url, wanted)):
            return [feed]
    try:
        return [FeedConfig(url=wanted, allow_private=allow_private)]
    except ValidationError as exc:
        fail(f"--feed: {str(exc.errors()[0]['msg']).removeprefix('Value error, ')}")


def _same_path(configured: str, wanted: str) -> bool:
    return (
        "://" not in wanted and Path(configured).expanduser().resolve() == Path(wanted).expanduser().resolve()
    )


def _print_reports(reports: list[FeedReport]) -> None:
    from rich.table import Table

    table = Table(title="Feeds ingested", title_justify="left")
    table.add_column("feed", overflow="fold")
    for heading in ("new", "updated", "unchanged", "skipped"):
        table.add_column(heading, justify="right")
    table.add_column("status", overflow="fold")
    for report in reports:
        status = "[red]" + _escape(report.error) + "[/red]" if report.error else "ok"
        if report.not_modified:
            status = "not modified"
        table.add_row(
            _escape(report.name),
            str(report.new),
            str(report.updated),
            str(report.unchanged),
            str(report.skipped_total),
            status,
        )
    console.print(table)
    for report in reports:
        for reason, count in report.skipped.items():
            console.print(f"{_escape(report.name)}: skipped {count} ({_escape(reason)})", highlight=False)
        for warning in report.warnings:
            errors.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_command(
    since: Annotated[str | None, typer.Option("--since", help="ISO date or time (UTC unless given).")] = None,
    section: Annotated[str | None, typer.Option("--section", help="Only this section.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many.")] = 50,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stored articles, newest first."""
    from rich.table import Table

    from newsletter.articles.queries import article_json, list_articles
    from newsletter.database.engine import READ_ONLY

    settings = load(config)
    start = parse_since(since)

    async def work(context: AppContext) -> list[dict[str, Any]]:
        async with context.db.session() as session:
            await session.connection(execution_options=READ_ONLY)
            articles = await list_articles(session, since=start, section=section, limit=limit)
            return [article_json(article) for article in articles]

    rows = with_context(settings, work)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} articles", title_justify="left")
    for heading in ("id", "published (UTC)", "section", "title"):
        table.add_column(heading, overflow="fold")
    for row in rows:
        published = row["published_at"][:16].replace("T", " ")
        table.add_row(str(row["id"]), published, _escape(row["section"] or ""), _escape(row["title"]))
    console.print(table)


@app.command("add")
def add_command(
    title: Annotated[str, typer.Option("--title", help="Headline (plain text).")],
    url: Annotated[str, typer.Option("--url", help="Absolute http(s) link to the story.")],
    summary: Annotated[str, typer.Option("--summary", help="Summary; HTML is sanitised.")] = "",
    section: Annotated[str | None, typer.Option("--section")] = None,
    image: Annotated[str | None, typer.Option("--image", help="Absolute http(s) image URL.")] = None,
    published: Annotated[
        str | None, typer.Option("--published", help="ISO date or time; default now.")
    ] = None,
    author: Annotated[str | None, typer.Option("--author")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add one article, or update the stored one with the same URL."""
    from newsletter.articles.inputs import ArticleRules, validate_articles
    from newsletter.articles.metrics import count_outcomes
    from newsletter.articles.store import upsert_articles
    from newsletter.database.models import utcnow

    settings = load(config)
    raw: dict[str, Any] = {"title": title, "url": url, "summary": summary, "section": section}
    raw.update(image_url=image, published_at=published, author=author)
    try:
        [item] = validate_articles(
            {k: v for k, v in raw.items() if v is not None}, ArticleRules.from_settings(settings)
        )
    except InvalidInput as exc:
        fail(f"{_OPTION_OF.get(exc.field, '--' + exc.field)}: {exc.message}")

    async def work(context: AppContext) -> tuple[str, int]:
        async with context.db.session() as session, session.begin():
            counts = await upsert_articles(session, [item], now=utcnow())
        count_outcomes("cli", new=counts.new, updated=counts.updated, unchanged=counts.unchanged)
        outcome = "new" if counts.new else "updated" if counts.updated else "unchanged"
        return outcome, counts.ids[0]

    outcome, article_id = with_context(settings, work)
    if as_json:
        print_json({"id": article_id, "outcome": outcome})
    else:
        console.print(f"article {article_id}: {outcome}", highlight=False)
