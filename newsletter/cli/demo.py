"""`newsletter demo`: the whole cycle on built-in defaults (the work: demo_session.py, imported
when the command runs: it brings the whole service along)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import ConfigOption, JsonOption


def demo(
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Then keep the web app, worker, publisher and outbox going."),
    ] = False,
    folder: Annotated[Path, typer.Option("--folder", help="Where var/ things go.")] = Path("var"),
    story_every: Annotated[
        float,
        typer.Option("--story-every", min=1, help="With --serve: seconds between new stories."),
    ] = 180,
    smtp_port: Annotated[
        int,
        typer.Option("--smtp-port", min=0, max=65535, help="The capture SMTP server's port (0: any)."),
    ] = 0,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Run the whole cycle on built-in defaults: a demo publisher, readers, today's edition sent.

    A capture SMTP server writes each message as an .eml file to var/outbox/.

    The demo's configuration is written to var/demo/newsletter.toml; commands run here use it."""
    from newsletter.cli.demo_session import run_session

    run_session(config, serve=serve, folder=folder, story_every=story_every, smtp_port=smtp_port, json=json)
