"""`newsletter smtp check`: can the service reach, secure and log in to its SMTP relays?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from newsletter.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    errors,
    load,
    print_json,
    run,
)

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.delivery.probe import RelayCheck

app = typer.Typer(help="SMTP relays.", no_args_is_help=True)


@app.command()
def check(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Connect to each relay, negotiate TLS and log in as sending would, without sending.

    Says what each server offers (SIZE, PIPELINING, SMTPUTF8, 8BITMIME…). Exit 1 if one fails."""
    if not report_relays(load(config), json=json):
        raise typer.Exit(EXIT_FAILED)


def report_relays(settings: Settings, *, json: bool) -> bool:
    """Check every relay and print what was found; True when all are usable."""
    from newsletter.delivery.probe import check_relays

    checks = run(check_relays(settings))
    if json:
        print_json({"relays": [checked.as_json() for checked in checks]})
    else:
        for checked in checks:
            _print(checked)
    return all(checked.ok for checked in checks)


def _print(checked: RelayCheck) -> None:
    from newsletter.delivery.probe import NOTABLE

    where = f"{checked.relay} ({checked.key}) {checked.server}, security {checked.security}"
    if not checked.ok:
        errors.print(f"error: {where}: {checked.error}", markup=False, highlight=False, soft_wrap=True)
        return
    console.print(f"{where}: OK", markup=False, highlight=False)
    if checked.tls:
        console.print(f"  TLS: {checked.tls}", markup=False, highlight=False)
    if checked.logged_in_as:
        console.print(f"  logged in as {checked.logged_in_as}", markup=False, highlight=False)
    for name in NOTABLE:
        value = checked.offers.get(name)
        shown = "no" if value is None else (value or "yes")
        console.print(f"  {name.upper()}: {shown}", markup=False, highlight=False)
    others = sorted(set(checked.offers) - set(NOTABLE))
    if others:
        console.print(f"  also: {', '.join(name.upper() for name in others)}", markup=False, highlight=False)
