"""`newsletter dkim record` and `dkim check`: the DNS records of the DKIM keys, and whether DNS
publishes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    errors,
    fail,
    load,
    note,
    print_json,
    run,
)
from newsletter.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from newsletter.config import DkimConfig
    from newsletter.rendering.dkim import DkimKey
    from newsletter.rendering.dkim_dns import KeyCheck, TxtRecord

# rendering.dkim_dns.DEFAULT_LIFETIME, which --help shows, without importing its DNS resolver.
DEFAULT_LIFETIME = 5.0

NOT_CONFIGURED = "dkim: not configured: set dkim.domain, dkim.selector and dkim.private_key_file"

app = typer.Typer(help="DKIM keys in DNS.", no_args_is_help=True)

NameserverOption = Annotated[
    str | None,
    typer.Option(
        "--nameserver",
        metavar="IP[:PORT]",
        help="Ask only this DNS server, e.g. the domain's own before a change has spread.",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", metavar="SECONDS", min=0.1, max=60, help="How long to wait for each answer."),
]


@app.command()
def record(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Print the DNS TXT record to publish for each configured key.

    As a zone-file entry (strings of at most 255 characters), and as the plain value for web consoles."""
    from newsletter.rendering.dkim_dns import txt_record

    records = [txt_record(key) for key in _keys(load(config).dkim)]
    if json:
        print_json([published.as_json() for published in records])
        return
    for index, published in enumerate(records):
        if index:
            _say("")
        _print_record(published)


@app.command()
def check(
    config: ConfigOption = None,
    nameserver: NameserverOption = None,
    timeout: TimeoutOption = DEFAULT_LIFETIME,
    json: JsonOption = False,
) -> None:
    """Look each key's selector up in DNS and say whether it publishes that key.

    Per key: matches, published but different, no record, revoked, malformed or lookup failed.

    Exit 1 unless every key matches."""
    from newsletter.rendering.dkim_dns import Status, check_keys, parse_nameserver

    keys = _keys(load(config).dkim)
    try:
        server = parse_nameserver(nameserver) if nameserver is not None else None
    except InvalidInput as exc:
        fail(str(exc))
    checks = run(check_keys(keys, nameserver=server, lifetime=timeout))
    if json:
        print_json([checked.as_json() for checked in checks])
    else:
        for checked in checks:
            _print_check(checked)
        stale = {Status.DIFFERENT, Status.MISSING}
        if server is None and any(checked.finding.status in stale for checked in checks):
            # A resolver keeps an answer for its TTL, the old key or "no record" included.
            note("resolvers cache answers for their TTL: --nameserver asks the domain's own DNS server")
    if not all(checked.ok for checked in checks):
        raise typer.Exit(EXIT_FAILED)


def _keys(config: DkimConfig) -> list[DkimKey]:
    """The configured keys, parsed; exit 2 with one line when there are none or one is bad."""
    from newsletter.rendering.dkim import load_keys

    if not config.enabled:
        fail(NOT_CONFIGURED)
    try:
        return load_keys(config)
    except ConfigError as exc:
        fail(str(exc))


def _print_record(published: TxtRecord) -> None:
    _say(f"{published.algorithm}, selector {published.selector}:")
    _say("zone file:")
    _say(published.zone_file())
    host = f"{published.selector}._domainkey"
    domain_name = published.name.removesuffix(".")  # web consoles mostly refuse the final dot
    domain = domain_name.removeprefix(f"{host}.")
    _say(f"DNS console: type TXT, name {domain_name} (host {host} in the {domain} zone), value:")
    _say(published.value)


def _print_check(checked: KeyCheck) -> None:
    finding = checked.finding
    line = f"{checked.algorithm} {checked.name}: {finding.status.label}"
    line += f": {finding.detail}" if finding.detail else ""
    if checked.ok:
        _say(line)
    else:
        errors.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)


def _say(line: str) -> None:
    # soft_wrap: a value to paste stays on one line, whatever the terminal's width.
    console.print(line, markup=False, highlight=False, soft_wrap=True)
