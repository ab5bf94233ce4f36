"""`newsletter config check`."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated

import typer

from newsletter.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    errors,
    fail,
    load,
    print_json,
    run,
)
from newsletter.cli.smtp import report_relays
from newsletter.errors import ConfigError, RenderError

app = typer.Typer(help="Configuration.", no_args_is_help=True)


@app.command()
def check(
    config: ConfigOption = None,
    json: JsonOption = False,
    connect: Annotated[
        bool, typer.Option("--connect", help="Also connect to each SMTP relay (`newsletter smtp check`).")
    ] = False,
) -> None:
    """Validate the configuration and print it, secrets masked; warn of what production needs.

    With --connect, also check each SMTP relay."""
    from newsletter.config import mask_secrets, warnings
    from newsletter.config.readiness import readiness
    from newsletter.delivery.probe import check_relays
    from newsletter.editions.samples import digest_size_warnings
    from newsletter.rendering.dkim import check_key

    settings = load(config)
    try:
        check_key(settings.dkim)
    except ConfigError as exc:
        fail(str(exc))
    data = mask_secrets(settings)
    try:
        cautions = warnings(settings) + digest_size_warnings(settings) + readiness(settings)
    except RenderError as exc:
        fail(f"templates: {exc}")
    if json:
        shown = str(settings.source) if settings.source else None
        relays = run(check_relays(settings)) if connect else []
        print_json(
            {"source": shown, "config": data, "warnings": cautions}
            | ({"relays": [checked.as_json() for checked in relays]} if connect else {})
        )
        if not all(checked.ok for checked in relays):
            raise typer.Exit(EXIT_FAILED)
        return
    for caution in cautions:
        errors.print(f"warning: {caution}", markup=False, highlight=False, soft_wrap=True)
    source = settings.source or "built-in defaults (no file)"
    console.print(f"# configuration OK: {source}", markup=False, highlight=False)
    console.print(_to_toml(data), markup=False, highlight=False)
    if connect:
        console.print("# SMTP relays", markup=False, highlight=False)
        if not report_relays(settings, json=False):
            raise typer.Exit(EXIT_FAILED)


def _to_toml(data: dict[str, object]) -> str:
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in data.items() if isinstance(v, list)}
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_value(value)}" for key, value in table.items()]
        lines.append("")
    for name, items in arrays.items():
        for item in items:
            lines.append(f"[[{name}]]")
            lines += [f"{key} = {_value(value)}" for key, value in item.items()]
            lines.append("")
    return "\n".join(lines).rstrip()


def _value(value: object) -> str:
    if value is None:
        return '""  # not set'
    if isinstance(value, bool):
        return "true" if value else "false"
    return jsonlib.dumps(value, ensure_ascii=False)
