"""`newsletter bounces serve|scan|list` and `newsletter suppressions list|add|remove`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    fail,
    load,
    parse_since,
    print_json,
    run,
    with_context,
)
from newsletter.errors import InvalidInput

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.context import AppContext
    from newsletter.subscriptions.addresses import Address

app = typer.Typer(help="Bounces and complaints that came back after sending.", no_args_is_help=True)
suppressions = typer.Typer(help="Addresses never mailed again.", no_args_is_help=True)

LimitOption = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many.")]


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Receive bounces by SMTP for the bounce domain (its MX), until SIGTERM or Ctrl-C."""
    settings = load(config)
    if not settings.bounces.verp:
        fail("bounces.domain: not set: the receiver accepts mail for the VERP addresses of that domain")

    from newsletter.bounces.receiver import run_receiver  # mail libraries: only when asked
    from newsletter.bounces.recorder import BounceRecorder
    from newsletter.context import open_context
    from newsletter.service import run_parts

    async def main() -> None:
        async with open_context(settings) as context:
            recorder = BounceRecorder(context)
            await run_parts([lambda stopping: run_receiver(settings, recorder, stopping)])

    run(main())


@app.command()
def scan(
    watch: Annotated[bool, typer.Option("--watch", help="Keep watching (IMAP IDLE or polling).")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Read the bounce mailbox ([bounces.mailbox]) once, or keep watching it."""
    settings = load(config)
    if not settings.bounces.mailbox.enabled:
        fail("bounces.mailbox.host: not set: no mailbox to scan")

    from newsletter.bounces.mailbox import scan_once  # IMAP and POP3 clients: only when asked
    from newsletter.bounces.recorder import BounceRecorder

    async def once(context: AppContext) -> Any:
        return await scan_once(context, BounceRecorder(context))

    if watch:
        run(_watch(settings))
        return
    report = with_context(settings, once)
    if json:
        print_json(report.as_json())
    else:
        console.print(report.summary(), markup=False, highlight=False)


async def _watch(settings: Settings) -> None:
    from newsletter.bounces.mailbox import run_scanner
    from newsletter.bounces.recorder import BounceRecorder
    from newsletter.context import open_context
    from newsletter.service import run_parts

    async with open_context(settings) as context:
        recorder = BounceRecorder(context)
        await run_parts([lambda stopping: run_scanner(context, recorder, stopping)])


@app.command("list")
def list_command(
    since: Annotated[str | None, typer.Option("--since", help="ISO date or time (UTC unless given).")] = None,
    kind: Annotated[
        str | None, typer.Option("--type", help="hard, soft, complaint or unknown.", show_default=False)
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="receiver, mailbox, ses, postmark, sendgrid or mailgun.", show_default=False
        ),
    ] = None,
    edition: Annotated[
        int | None, typer.Option("--edition", help="Only this edition's.", show_default=False)
    ] = None,
    limit: LimitOption = 100,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Bounces and complaints received after sending, newest first, with what each did."""
    from rich.table import Table

    from newsletter.bounces.queries import check_kind, check_source, list_bounces
    from newsletter.database.engine import READ_ONLY

    settings = load(config)
    try:
        check_kind(kind, field="--type")
        check_source(source, field="--source")
    except InvalidInput as exc:
        fail(str(exc))
    start = parse_since(since)

    async def work(context: AppContext) -> list[dict[str, Any]]:
        async with context.db.session() as session:
            await session.connection(execution_options=READ_ONLY)
            views = await list_bounces(
                session, since=start, kind=kind, source=source, edition_id=edition, limit=limit
            )
        return [view.as_json() for view in views]

    rows = with_context(settings, work)
    if json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} bounces and complaints", title_justify="left")
    for heading in (
        "received (UTC)",
        "type",
        "source",
        "outcome",
        "address",
        "edition",
        "status",
        "diagnostic",
    ):
        table.add_column(heading, overflow="fold")
    for row in rows:
        table.add_row(
            row["received_at"][:19].replace("T", " "),
            row["kind"],
            row["source"],
            row["outcome"],
            row["recipient"] or "",
            str(row["edition_id"] or ""),
            row["status"] or "",
            (row["diagnostic"] or "")[:120],
        )
    console.print(table, markup=False, highlight=False)


@suppressions.command("list")
def suppressions_list(
    reason: Annotated[
        str | None, typer.Option("--reason", help="complaint, manual or erased.", show_default=False)
    ] = None,
    limit: LimitOption = 100,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Suppressed addresses, newest first (erased ones are kept only as a hash)."""
    from rich.table import Table

    from newsletter.subscriptions.suppressions import listed

    if reason is not None and reason not in ("complaint", "manual", "erased"):
        fail("--reason: must be one of complaint, manual, erased")
    settings = load(config)

    async def work(context: AppContext) -> list[dict[str, Any]]:
        async with context.db.session() as session:
            entries = await listed(session, reason=reason, limit=limit)
        return [entry.as_json() for entry in entries]

    rows = with_context(settings, work)
    if json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} suppressed addresses", title_justify="left")
    for heading in ("since (UTC)", "reason", "address"):
        table.add_column(heading, overflow="fold")
    for row in rows:
        shown = row["email"] or f"(erased; sha256 {row['email_hash'][:16]}…)"
        table.add_row(row["created_at"][:19].replace("T", " "), row["reason"], shown)
    console.print(table, markup=False, highlight=False)


@suppressions.command("add")
def suppressions_add(
    email: Annotated[str, typer.Argument(help="The address never to mail again.")],
    config: ConfigOption = None,
) -> None:
    """Suppress an address; a subscriber who has it is unsubscribed from everything at once."""
    from newsletter.subscriptions.audit import Actor
    from newsletter.subscriptions.suppressions import add_by_operator

    settings = load(config)
    address = _address(settings, email)

    async def work(context: AppContext) -> bool:
        async with context.db.session() as session, session.begin():
            return await add_by_operator(session, address, actor=Actor("cli"))

    added = with_context(settings, work)
    console.print("suppressed" if added else "already suppressed", markup=False)


@suppressions.command("remove")
def suppressions_remove(
    email: Annotated[str, typer.Argument(help="The address to lift from the list.")],
    config: ConfigOption = None,
) -> None:
    """Lift a suppression. The reader is not re-subscribed: they may sign up again themselves."""
    from newsletter.subscriptions.suppressions import lift

    settings = load(config)
    address = _address(settings, email)

    async def work(context: AppContext) -> None:
        async with context.db.session() as session, session.begin():
            await lift(session, address)

    with_context(settings, work)
    console.print("lifted", markup=False)


def _address(settings: Settings, email: str) -> Address:
    from newsletter.subscriptions.addresses import normalise_address

    try:
        return normalise_address(email, local_domains=settings.subscriptions.allow_local_domains)
    except InvalidInput as exc:
        fail(str(exc))
