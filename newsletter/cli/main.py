"""The root `newsletter` command and its groups."""

from __future__ import annotations

from typing import Annotated

import typer

from newsletter import __version__
from newsletter.cli import configcmd, db, serve

app = typer.Typer(
    name="newsletter",
    help="Daily news digests from feeds to subscribers, over SMTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(configcmd.app, name="config")
app.command()(serve.serve)


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
