"""`newsletter admins add|list|remove|passwd`: the operator console's accounts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from newsletter.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    fail,
    load,
    note,
    print_json,
    with_context,
)
from newsletter.errors import InvalidInput

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.console.accounts import Account
    from newsletter.context import AppContext

# Each command imports newsletter.console.accounts itself: importing it hashes a password
# (a quarter of a second), which every other `newsletter` command would pay too.

T = TypeVar("T")

app = typer.Typer(help="Console accounts: add, list, remove, change a password.", no_args_is_help=True)

NameArgument = Annotated[
    str,
    typer.Argument(
        help="Account name: lower-case letters, digits and . _ @ - (up to 64).", show_default=False
    ),
]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from one line of standard input (scripts)."),
]


@app.command()
def add(
    name: NameArgument,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="owner, editor or viewer (default: editor; owner for the first).",
            show_default=False,
        ),
    ] = None,
    password_stdin: PasswordStdin = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Add a console account; the password is asked twice (hidden) unless --password-stdin."""
    from newsletter.console import accounts
    from newsletter.console.accounts import Role

    _checked(accounts.check_name, name)
    chosen = _checked(accounts.role_of, role) if role is not None else None
    settings = load(config)
    existing = with_context(settings, accounts.listing)
    if any(a.name == name for a in existing):
        fail(f"name: an account named {name!r} exists already")
    if not existing and chosen not in (None, Role.OWNER):
        fail("role: the first account must be an owner (it manages the others)")
    if not existing and chosen is None:
        note(f"{name} is the first account: made an owner")
    final = chosen or (Role.EDITOR if existing else Role.OWNER)
    password = _checked(accounts.check_password, _password(name, password_stdin))
    account = with_context(settings, lambda context: accounts.add(context, name, password, final))
    if json:
        print_json(account.as_json())
    else:
        console.print(f"added {account.name} ({account.role})", markup=False, highlight=False)


@app.command("list")
def list_(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Console accounts by name, with their roles."""
    from rich.table import Table

    from newsletter.console import accounts

    listed = with_context(load(config), accounts.listing)
    if json:
        print_json([a.as_json() for a in listed])
        return
    if not listed:
        console.print("no console accounts yet: `newsletter admins add NAME`", markup=False)
        return
    table = Table()
    for column in ("name", "role", "created", "password changed"):
        table.add_column(column)
    for a in listed:
        table.add_row(a.name, a.role.value, _when(a.created_at), _when(a.password_changed_at))
    console.print(table)


@app.command()
def remove(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
) -> None:
    """Remove a console account and end its sessions (the last owner stays)."""
    from newsletter.console import accounts

    settings = load(config)
    account = _existing(settings, name)
    if not yes:
        typer.confirm(f"Remove the console account {name} ({account.role})?", abort=True, err=True)
    with_context(settings, lambda context: accounts.remove(context, name))
    console.print(f"removed {name}; its console sessions were ended", markup=False, highlight=False)


@app.command()
def passwd(name: NameArgument, password_stdin: PasswordStdin = False, config: ConfigOption = None) -> None:
    """A new password for a console account; its console sessions end."""
    from newsletter.console import accounts

    settings = load(config)
    _existing(settings, name)
    password = _checked(accounts.check_password, _password(name, password_stdin))
    with_context(settings, lambda context: accounts.set_password(context, name, password))
    console.print(
        f"password of {name} changed; its console sessions were ended", markup=False, highlight=False
    )


def _checked(check: Callable[[str], T], value: str) -> T:
    """`check(value)`, or exit 2 with its one line naming the field."""
    try:
        return check(value)
    except InvalidInput as exc:
        fail(str(exc))


def _existing(settings: Settings, name: str) -> Account:
    from newsletter.console import accounts

    async def work(context: AppContext) -> Account | None:
        return next((a for a in await accounts.listing(context) if a.name == name), None)

    account = with_context(settings, work)
    if account is None:
        fail(f"not found: no account named {name!r}")
    return account


def _password(name: str, from_stdin: bool) -> str:
    """One line of standard input, or typed twice at a hidden prompt; never echoed."""
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    typed: str = typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True)
    return typed


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
