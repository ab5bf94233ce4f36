"""The `newsletter` command line: Typer commands that load settings and call services."""
