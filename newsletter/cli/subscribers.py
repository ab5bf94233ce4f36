"""`newsletter subscribers add|list|import|export|remove`."""

from __future__ import annotations

import sys
from json import dumps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.cells import cell_len

from newsletter.cli.common import ConfigOption, JsonOption, console, fail, load, print_json, with_context

if TYPE_CHECKING:
    from newsletter.context import AppContext
    from newsletter.subscriptions.adding import Outcome
    from newsletter.subscriptions.importing import ImportReport

app = typer.Typer(help="Subscribers: add, list, import, export, erase.", no_args_is_help=True)

StatusOption = Annotated[
    str | None,
    typer.Option("--status", help="Only this status: pending, active, unsubscribed, bounced, erased."),
]


@app.command()
def add(
    email: Annotated[str, typer.Argument(help="The address.", show_default=False)],
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="The reader already agreed: active at once, no email.")
    ] = False,
    section: Annotated[list[str] | None, typer.Option("--section", help="A section (repeatable).")] = None,
    newsletter: Annotated[
        list[str] | None,
        typer.Option("--newsletter", help="A newsletter id (repeatable; default: the first)."),
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Add a subscriber (pending with a confirmation email unless --confirmed), or update one."""
    from newsletter.subscriptions.adding import Outcome, add_batch
    from newsletter.subscriptions.addresses import normalise_address
    from newsletter.subscriptions.audit import Actor
    from newsletter.subscriptions.forms import NewSubscriber, entry_choices

    settings = load(config)

    async def work(context: AppContext) -> tuple[Outcome, str | None]:
        entry = NewSubscriber(
            address=normalise_address(email, local_domains=settings.subscriptions.allow_local_domains),
            choices=entry_choices(settings, newsletter or [], section or []),
            confirmed=confirmed,
        )
        async with context.db.session() as session, session.begin():
            (result,) = await add_batch(session, settings=settings, entries=[entry], actor=Actor("cli"))
        return result.outcome, result.reason

    outcome, reason = with_context(settings, work)
    if outcome is Outcome.SUPPRESSED:
        fail(f"refused: {reason}")
    if json:
        print_json({"email": email, "result": outcome.value})
    else:
        console.print(f"{outcome.value}: {email}", markup=False, highlight=False)


@app.command("list")
def list_(status: StatusOption = None, config: ConfigOption = None, json: JsonOption = False) -> None:
    """List subscribers, oldest first (streamed: any number of them)."""
    from newsletter.database.engine import READ_ONLY
    from newsletter.subscriptions.listing import iterate_subscribers

    settings = load(config)
    wanted = _status(status)

    async def work(context: AppContext) -> int:
        shown = 0
        table = Columns(sys.stdout)
        async with context.db.session() as session:
            await session.connection(execution_options=READ_ONLY)
            async for view in iterate_subscribers(session, status=wanted):
                item = view.as_json()
                if json:
                    sys.stdout.write(("[\n" if shown == 0 else ",\n") + dumps(item, ensure_ascii=False))
                else:
                    table.add(_cells(item))
                shown += 1
        if json:
            sys.stdout.write("\n]\n" if shown else "[]\n")
        else:
            table.close()
        return shown

    shown = with_context(settings, work)
    if not json:
        console.print(f"{shown} subscriber(s)")


def _cells(item: dict[str, Any]) -> tuple[str, ...]:
    newsletters = ", ".join(f"{n} ({'; '.join(s)})" if s else n for n, s in item["newsletters"].items())
    return (
        item["email"] or "(erased)",
        item["status"],
        item["created_at"][:16],
        (item["confirmed_at"] or "-")[:16],
        newsletters,
    )


class Columns:
    """Rows under a header, in columns aligned by terminal cells (CJK characters and emoji take
    two each). Streamed: the first rows set the widths."""

    HEADER = ("email", "status", "created", "confirmed", "newsletters")
    GAP = "  "
    # Rows read before the widths are fixed; a longer cell further down pushes only its line.
    SIZING_ROWS = 500

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.pending: list[tuple[str, ...]] = []
        self.widths: list[int] | None = None

    def add(self, cells: tuple[str, ...]) -> None:
        if self.widths is not None:
            self.out.write(self._line(cells, self.widths))
            return
        self.pending.append(cells)
        if len(self.pending) >= self.SIZING_ROWS:
            self._flush()

    def close(self) -> None:
        if self.widths is None and self.pending:
            self._flush()

    def _flush(self) -> None:
        rows = [self.HEADER, *self.pending]
        # The last column is not padded: nothing follows it.
        self.widths = [max(cell_len(row[i]) for row in rows) for i in range(len(self.HEADER) - 1)]
        self.out.writelines(self._line(row, self.widths) for row in rows)
        self.pending = []

    def _line(self, cells: tuple[str, ...], widths: list[int]) -> str:
        padded = [cell + " " * (width - cell_len(cell)) for cell, width in zip(cells, widths, strict=False)]
        return self.GAP.join([*padded, cells[-1]]).rstrip() + "\n"


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with a header row naming an 'email' column.")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the valid rows even if some are not.")
    ] = False,
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="Every row already agreed: active, no confirmation email.")
    ] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Import subscribers from CSV: all or nothing, unless --skip-invalid."""
    from newsletter.subscriptions.importing import import_csv

    settings = load(config)

    async def work(context: AppContext) -> ImportReport:
        return await import_csv(context, file, skip_invalid=skip_invalid, confirmed=confirmed)

    report = with_context(settings, work)
    if json:
        print_json(_report_json(report))
    else:
        _print_report(report)
    if not report.written:
        first = report.problems[0]
        fail(
            f"{file.name}: {report.invalid} invalid row(s), nothing imported "
            f"(line {first.line}: {first.field}: {first.message}); fix them or use --skip-invalid"
        )


def _report_json(report: ImportReport) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "added": report.added,
        "updated": report.updated,
        "invalid": report.invalid,
        "suppressed": report.suppressed,
        "imported": report.written,
        "problems": [{"line": p.line, "field": p.field, "message": p.message} for p in report.problems],
    }


def _print_report(report: ImportReport) -> None:
    from rich.table import Table

    if report.problems:
        table = Table("line", "field", "problem")
        for problem in report.problems:
            table.add_row(str(problem.line), problem.field, problem.message)
        console.print(table)
    listed = len(report.problems)
    more = report.invalid + report.suppressed - listed
    if more > 0:
        console.print(f"… and {more} more problem row(s) not listed")
    console.print(
        f"rows {report.rows}: added {report.added}, updated {report.updated}, "
        f"invalid {report.invalid}, suppressed {report.suppressed}"
        + ("" if report.written else " (nothing imported)"),
        markup=False,
        highlight=False,
    )


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="Where to write the CSV.")],
    status: StatusOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Export subscribers to CSV (formula-like cells neutralised for spreadsheets)."""
    from newsletter.subscriptions.exporting import export_csv

    settings = load(config)
    wanted = _status(status)

    async def work(context: AppContext) -> int:
        return await export_csv(context.db, file, status=wanted)

    count = with_context(settings, work)
    if json:
        print_json({"file": str(file), "subscribers": count})
    else:
        console.print(f"exported {count} subscriber(s) to {file}", markup=False, highlight=False)


@app.command()
def remove(
    email: Annotated[str, typer.Argument(help="The address to erase.", show_default=False)],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Erase a subscriber: personal data removed, a hashed suppression entry kept."""
    from newsletter.subscriptions.addresses import normalise_address
    from newsletter.subscriptions.audit import Actor
    from newsletter.subscriptions.erasure import erase

    settings = load(config)

    async def work(context: AppContext) -> int:
        address = normalise_address(email, local_domains=settings.subscriptions.allow_local_domains)
        async with context.db.session() as session, session.begin():
            return await erase(session, address=address, actor=Actor("cli"))

    subscriber_id = with_context(settings, work)
    if json:
        print_json({"erased": True, "subscriber": subscriber_id})
    else:
        console.print("erased (a hashed suppression entry is kept)")


def _status(value: str | None) -> str | None:
    from newsletter.subscriptions.listing import check_status

    try:
        return check_status(value, "--status")
    except ValueError as exc:
        fail(str(exc))
