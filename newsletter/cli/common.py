"""What every command shares: --config, --json, settings loading and exit statuses."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from newsletter.errors import ConfigError, DatabaseUnavailable, InvalidInput, NotFound, RenderError

if TYPE_CHECKING:
    from datetime import datetime

    from newsletter.config import LoggingConfig, NewsletterConfig, Settings
    from newsletter.context import AppContext

# Building the command tree imports every command module, so they and this one import the
# configuration, the database and each command's work only when that command runs: `--help` and
# `--version` pay for typer alone (tests/cli/test_light_imports.py).

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# What a user who took a flag for an option may type after it, read as the next argument.
FLAG_VALUES = frozenset({"true", "false", "yes", "no"})

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (default: $NEWSLETTER_CONFIG, else ./newsletter.toml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only, on stdout.")]

# Where `newsletter demo` (run in the project folder) writes its configuration.
DEMO_CONFIG = Path("var/demo/newsletter.toml")

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one line on stderr and exit."""
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load(config: Path | None, overrides: dict[str, Any] | None = None, *, find_demo: bool = True) -> Settings:
    """The settings, from `config` or the usual places; in a folder where `newsletter demo` ran
    and no other configuration is found, the demo's (said on stderr)."""
    from newsletter.config import find_config_file, load_settings

    if config is None and find_demo and find_config_file(None) is None and DEMO_CONFIG.is_file():
        config = DEMO_CONFIG
        note(f"using the demo's configuration {DEMO_CONFIG} (--config or ./newsletter.toml to use another)")
    try:
        settings = load_settings(config, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings.logging)
    return settings


def configure_logging(config: LoggingConfig) -> None:
    """newsletter.logs' (it imports the configuration); here, a test can replace it."""
    from newsletter.logs import configure_logging as configure

    configure(config)


def parse_since(value: str | None, option: str = "--since") -> datetime | None:
    """An ISO date or time from the command line (UTC unless given); exit 2 naming `option`."""
    from newsletter.moments import parse_moment

    if value is None:
        return None
    try:
        return parse_moment(value)
    except ValueError as exc:
        fail(f"{option}: {exc}")


def note(message: str) -> None:
    """One line on stderr that is not an error."""
    errors.print(f"note: {message}", markup=False, highlight=False, soft_wrap=True)


def note_if_created(context: AppContext) -> None:
    """Say so when this command made a new, empty database: usually the operator meant another."""
    from sqlalchemy.engine import make_url

    if context.created:
        url = make_url(context.settings.database.url).render_as_string(hide_password=True)
        note(f"database.url {url} held no newsletter database; created a new, empty one")


def find_newsletter(settings: Settings, newsletter_id: str | None) -> NewsletterConfig:
    """The newsletter named on the command line (None: the first); exit 2 naming it otherwise."""
    try:
        return settings.find_newsletter(newsletter_id)
    except InvalidInput as exc:
        flag_value = (newsletter_id or "").lower() in FLAG_VALUES
        fail(f"{exc}; a flag takes no value: `--dry-run`, not `--dry-run true`" if flag_value else str(exc))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning expected errors into one line and exit 2."""
    from newsletter import eventloop

    try:
        return eventloop.run(coroutine)
    except (ConfigError, DatabaseUnavailable, InvalidInput, NotFound, RenderError) as exc:
        message = str(exc)
        if isinstance(exc, NotFound):
            message = f"not found: {message}"
        fail(message)


def with_context(
    settings: Settings, work: Callable[[AppContext], Awaitable[T]], *, migrate: bool = True
) -> T:
    from newsletter.context import open_context

    async def main() -> T:
        async with open_context(settings, migrate=migrate) as context:
            result = await work(context)
            note_if_created(context)  # after the work: bad input stays one line and exit 2
            return result

    return run(main())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
