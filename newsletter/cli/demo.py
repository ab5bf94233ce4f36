"""`newsletter demo [--serve]`: the whole cycle on built-in defaults, nothing to configure."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import ConfigOption, JsonOption, console, load, print_json, run
from newsletter.cli.serve import scheduler_part, worker_part
from newsletter.context import AppContext
from newsletter.demo.capture import CaptureServer
from newsletter.demo.run import DemoResult, summary
from newsletter.demo.run import demo as run_demo
from newsletter.service import run_parts
from newsletter.web import create_app
from newsletter.web.server import web_part


def demo(
    serve: Annotated[
        bool, typer.Option("--serve", help="Then keep the web app, scheduler, worker and outbox running.")
    ] = False,
    folder: Annotated[Path, typer.Option("--folder", help="Where var/ things go.")] = Path("var"),
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Run the whole cycle on built-in defaults: sample feed, demo readers, a capture SMTP
    server writing .eml files to var/outbox/, today's edition sent for real."""
    base = load(config)
    # The demo tells its own story; the service's event log would drown it.
    logging.getLogger().setLevel(logging.WARNING)
    say = (lambda _: None) if json else (lambda line: console.print(f"• {line}", highlight=False))

    async def keep_serving(context: AppContext, capture: CaptureServer) -> None:
        settings = context.settings
        console.print(
            f"\nServing {settings.site.base_url}/ (sign up there; emails land in {capture.folder}/). "
            "Ctrl-C stops.",
            highlight=False,
        )
        app = create_app(settings, context)
        await run_parts(
            [
                web_part(app, settings),
                scheduler_part(context),
                worker_part(context, asyncio.Event(), lambda: settings),
            ]
        )

    async def main() -> DemoResult:
        return await run_demo(base, folder, keep_serving=keep_serving if serve else None, progress=say)

    result = run(main())
    if json:
        print_json(summary(result))
        return
    if not serve:
        _print_summary(result)


def _print_summary(result: DemoResult) -> None:
    counts = result.edition.counts
    table = Table(title="London Daily demo", show_header=False)
    rows = [
        ("articles ingested", str(result.articles)),
        ("demo readers", str(result.readers)),
        ("edition", f"#{result.edition.id} of {result.edition.date} ({result.edition.status})"),
        ("messages sent", f"{counts['sent']} (skipped {counts['skipped']}, failed {counts['failed']})"),
        ("emails (.eml)", f"{result.paths.outbox}/"),
        ("digest for a browser", str(result.paths.digest)),
        ("demo database", str(result.paths.database)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(
        f"Open {result.paths.digest} in a browser to see the digest. "
        "Run `newsletter demo --serve` (or `make serve`) to sign up on the web page, find the "
        "confirmation email in the outbox, and trigger a send.",
        highlight=False,
    )
