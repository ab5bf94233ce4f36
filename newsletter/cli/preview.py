"""`newsletter preview [NEWSLETTER] [--out FILE] [--email EMAIL]`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.common import ConfigOption, console, errors, fail, find_newsletter, load, with_context
from newsletter.errors import ConfigError, RenderError

if TYPE_CHECKING:
    from newsletter.context import AppContext
    from newsletter.database.models import Article
    from newsletter.editions.preview import Preview, Reader

NewsletterArgument = Annotated[
    str | None,
    typer.Argument(help="Newsletter id (default: the first configured).", show_default=False),
]
OutOption = Annotated[
    Path,
    typer.Option("--out", "-o", help="Write FILE.html, FILE.txt and FILE.eml.", metavar="FILE"),
]
EmailOption = Annotated[
    str | None,
    typer.Option(
        "--email", help="Preview for this subscriber: their sections and links.", show_default=False
    ),
]


def preview(
    newsletter: NewsletterArgument = None,
    out: OutOption = Path("preview"),
    email: EmailOption = None,
    config: ConfigOption = None,
) -> None:
    """Render the next digest to FILE.html, FILE.txt and FILE.eml; records nothing."""
    from newsletter.database.models import utcnow
    from newsletter.editions.preview import build_preview, find_reader, next_articles
    from newsletter.rendering.dkim import check_key
    from newsletter.rendering.size import clipping_warning, html_bytes

    settings = load(config)
    chosen = find_newsletter(settings, newsletter)
    if not out.parent.is_dir():
        fail(f"--out: folder does not exist: {out.parent}")
    try:
        check_key(settings.dkim)
    except ConfigError as exc:
        fail(str(exc))
    now = utcnow()

    async def gather(context: AppContext) -> tuple[Reader, list[Article]]:
        async with context.db.session() as session:
            reader = await find_reader(session, chosen, email)
            return reader, await next_articles(session, chosen, reader.sections, now)

    reader, articles = with_context(settings, gather)
    try:
        result = build_preview(settings, chosen, reader, articles, now)
    except (RenderError, ConfigError) as exc:
        fail(str(exc))
    paths = _write(out, result)
    console.print(
        f"{result.subject}: {result.articles} article(s) for {reader.email}", markup=False, soft_wrap=True
    )
    for path in paths:
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    size = html_bytes(result.html)
    console.print(f"HTML: {size:,} bytes", markup=False, highlight=False)
    if caution := clipping_warning(size):
        errors.print(f"warning: {caution}", markup=False, highlight=False, soft_wrap=True)
    if not result.would_send:
        console.print(
            f"note: no new articles, so this edition would send nothing "
            f"(newsletters.send_when_empty is false for {chosen.id})",
            markup=False,
        )


def _write(out: Path, result: Preview) -> list[Path]:
    files = {".html": result.html.encode("utf-8"), ".txt": result.text.encode("utf-8"), ".eml": result.eml}
    paths: list[Path] = []
    for suffix, data in files.items():
        path = out.with_name(out.name + suffix)
        try:
            path.write_bytes(data)
        except OSError as exc:
            fail(f"--out: cannot write {path}: {exc.strerror}")
        paths.append(path)
    return paths
