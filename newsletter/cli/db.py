"""`newsletter db upgrade`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from newsletter.cli.common import ConfigOption, console, load, with_context

if TYPE_CHECKING:
    from newsletter.context import AppContext

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade(config: ConfigOption = None) -> None:
    """Apply migrations up to the newest (also done automatically at start)."""
    settings = load(config)

    async def work(context: AppContext) -> None:
        from newsletter.database.migrate import upgrade as do_upgrade

        before, after = await do_upgrade(context.db)
        if before == after:
            console.print(f"database already at revision {after}")
        else:
            console.print(f"database upgraded from {before or 'empty'} to {after}")

    with_context(settings, work, migrate=False)
