"""The work of `newsletter demo [--serve]` (the whole cycle on built-in defaults, nothing to
configure): imported by its command, demo.py, when it runs, for it brings the whole service."""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import sys
from pathlib import Path

from rich.table import Table

from newsletter.cli.common import console, load, print_json, run
from newsletter.cli.running import scheduler_part, worker_part
from newsletter.demo.narrator import narrate
from newsletter.demo.run import DemoResult, Running, newsroom_part, summary
from newsletter.demo.run import demo as run_demo
from newsletter.service import run_parts
from newsletter.web import create_app
from newsletter.web.server import web_part


def run_session(
    config: Path | None, *, serve: bool, folder: Path, story_every: float, smtp_port: int, json: bool
) -> None:
    """`newsletter demo`'s work (the command is newsletter/cli/demo.py)."""
    base = load(config, find_demo=False)
    # The demo tells its own story; the service's event log would drown it.
    logging.getLogger().setLevel(logging.WARNING)
    say = (lambda _: None) if json else (lambda line: console.print(f"• {line}", highlight=False))

    async def keep_serving(running: Running) -> None:
        settings = running.context.settings
        if not json:
            _print_serving(running, story_every)
        narrate(console)
        await run_parts(
            [
                web_part(create_app(settings, running.context), settings),
                scheduler_part(running.context),
                worker_part(running.context, asyncio.Event(), lambda: settings),
                newsroom_part(running, story_every),
            ]
        )

    async def main() -> DemoResult:
        return await run_demo(
            base, folder, keep_serving=keep_serving if serve else None, progress=say, smtp_port=smtp_port
        )

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
        ("demo configuration", str(result.paths.config)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(
        f"Open {result.paths.digest} in a browser to see the digest. "
        "Run `make serve` (or `newsletter demo --serve`) to sign up on the web page, find the "
        "confirmation email in the outbox, and send the next edition as London Daily publishes.",
        highlight=False,
    )


def _every(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"


def _print_serving(running: Running, story_every: float) -> None:
    """Where everything is, and the exact commands that work on the running demo."""
    settings = running.result.settings
    base_url = str(settings.site.base_url).rstrip("/")
    token = settings.security.admin_token.get_secret_value()
    cli = _command()
    auth = f"-H {shlex.quote('Authorization: Bearer ' + token)}"
    start = "-X POST -H 'Content-Type: application/json' -d '{\"new\": true}'"
    lines = [
        "",
        f"[bold]Serving {base_url}/[/] — sign up there; emails land in {running.capture.folder}/.",
        f"Demo publisher: {running.publisher.feed_url} (a new story every {_every(story_every)}).",
        f"Capture SMTP server: 127.0.0.1:{running.capture.port}.  Database: {running.result.paths.database}",
        f"Configuration: {running.result.paths.config} (commands run in this folder use it).",
        f"Admin token: {token}",
        f"Web archive: {base_url}/archive/{settings.newsletters[0].id} (every edition sent, as its emails' "
        '"View in your browser" link opens it).',
        "",
        "[bold]In another terminal, in this folder:[/]",
        f"  {cli} send --new                 # the next edition, with what was published since the last",
        f"  {cli} editions list",
        f"  {cli} subscribers list",
        f"  curl {auth} {base_url}/api/editions",
        f"  curl {start} {auth} {base_url}/api/editions",
        "",
        "Ctrl-C stops.",
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def _command() -> str:
    """How this `newsletter` was started, so printed commands work when copied as they are."""
    launched = Path(sys.argv[0]).resolve()
    if launched.name == "__main__.py":
        return f"{shlex.quote(sys.executable)} -m newsletter"
    found = shutil.which("newsletter")
    if found is not None and Path(found).resolve() == launched:
        return "newsletter"
    try:
        return shlex.quote(str(launched.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(launched))
