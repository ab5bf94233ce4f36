"""The root `newsletter` command and its groups."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from newsletter import __version__
from newsletter.cli import admins, bounces, configcmd, db, demo, dkim, editions, serve, smtp, stats
from newsletter.cli import articles as articles_cmd
from newsletter.cli import preview as preview_cmd
from newsletter.cli import subscribers as subscribers_cmd


class PlainFlagsGroup(TyperGroup):
    """The root command group: every flag in its tree shows in --help as a plain flag."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        plain_flags(self, None)


def plain_flags(command: TyperCommand | TyperGroup, parent: typer.Context | None) -> None:
    """Blank the metavar of each flag under `command`, --help included.

    Typer 0.29's rich help prints a flag's type (`--dry-run <bool>`) as if it took a value,
    which it does not (`--dry-run true` reads "true" as the next argument); 0.28 hid it. An
    empty metavar is what that help prints instead of the type.
    """
    context = typer.Context(command, parent=parent, info_name=command.name, **command.context_settings)
    # get_params includes the help option, made (and kept) for this command on first use.
    for param in command.get_params(context):
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        plain_flags(sub, context)


app = typer.Typer(
    name="newsletter",
    cls=PlainFlagsGroup,
    help="Daily news digests from feeds to subscribers, over SMTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(configcmd.app, name="config")
app.add_typer(smtp.app, name="smtp")
app.add_typer(dkim.app, name="dkim")
app.add_typer(bounces.app, name="bounces")
app.add_typer(bounces.suppressions, name="suppressions")
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
app.command()(stats.stats)
app.add_typer(admins.app, name="admins")


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
