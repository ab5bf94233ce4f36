"""`newsletter config check`."""

from __future__ import annotations

import json as jsonlib

import typer

from newsletter.cli.common import ConfigOption, JsonOption, console, errors, load, print_json
from newsletter.config import mask_secrets, warnings

app = typer.Typer(help="Configuration.", no_args_is_help=True)


@app.command()
def check(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Validate the configuration and print it, secrets masked."""
    settings = load(config)
    data = mask_secrets(settings)
    cautions = warnings(settings)
    if json:
        shown = str(settings.source) if settings.source else None
        print_json({"source": shown, "config": data, "warnings": cautions})
        return
    for caution in cautions:
        errors.print(f"warning: {caution}", markup=False, highlight=False, soft_wrap=True)
    source = settings.source or "built-in defaults (no file)"
    console.print(f"# configuration OK: {source}", markup=False, highlight=False)
    console.print(_to_toml(data), markup=False, highlight=False)


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
