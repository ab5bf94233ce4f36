"""The root `newsletter` command and its groups."""

from __future__ import annotations

from typing import Annotated

import typer

from newsletter import __version__
from newsletter.cli import articles as articles_cmd
from newsletter.cli import configcmd, db, demo, editions, serve, smtp
from newsletter.cli import preview as preview_cmd
from newsletter.cli import subscribers as subscribers_cmd

app = typer.Typer(
    name="newsletter",
    help="Daily news digests from feeds to subscribers, over SMTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(configcmd.app, name="config")
app.add_typer(smtp.app, name="smtp")
app.command(name="ingest")(articles_cmd.ingest)
app.add_typer(articles_cmd.app, name="articles")
app.add_typer(subscribers_cmd.app, name="subscribers")
app.command()(serve.serve)
app.command()(serve.worker)
app.command()(serve.scheduler)
app.command()(editions.send)
app.command()(demo.demo)
app.add_typer(editions.app, name="editions")
app.command(name="preview")(preview_cmd.preview)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"newsletter {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Daily news digests from feeds to subscribers, over SMTP."""


def run() -> None:
    app()
