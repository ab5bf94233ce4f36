"""`newsletter send` and `newsletter editions list|show|resume|cancel|unpublish|publish`."""

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
    find_newsletter,
    load,
    print_json,
    run,
    with_context,
)
from newsletter.states import LISTED_DELIVERIES, DeliveryStatus, EditionStatus

if TYPE_CHECKING:
    from newsletter.archive.operators import ArchiveState
    from newsletter.cli.progress import Reasons
    from newsletter.config import Settings
    from newsletter.context import AppContext
    from newsletter.delivery.worker import ConfigurationFault
    from newsletter.editions.service import DeliveryPage, EditionReport

# The ledger's statuses in the order the summary shows them.
SUMMARY_COLUMNS = [
    DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED, DeliveryStatus.RETRY,
    DeliveryStatus.QUEUED, DeliveryStatus.LEASED,
]  # fmt: skip

LISTABLE = LISTED_DELIVERIES  # which --help names: from states, so the service is not imported

RETURNED = {
    "hard": "hard bounces",
    "soft": "soft bounces",
    "complaint": "complaints",
    "unknown": "unreadable",
}

app = typer.Typer(help="Editions: progress, resume, cancel.", no_args_is_help=True)

NewsletterArgument = Annotated[
    str | None, typer.Argument(help="Newsletter id (default: the first configured).", show_default=False)
]


def send(
    newsletter: NewsletterArgument = None,
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="Render and count; send and record nothing.")
    ] = False,
    to: Annotated[
        str | None, typer.Option("--to", help="Send one test copy to this address; record nothing.")
    ] = None,
    new: Annotated[bool, typer.Option("--new", help="Start another edition even if today's exists.")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Build today's edition now (or continue today's) and deliver it, with a progress bar."""
    settings = load(config)
    find_newsletter(settings, newsletter)
    if dry_run_:
        _dry_run(settings, newsletter, json)
    elif to is not None:
        _test_copy(settings, newsletter, to, json)
    else:
        result, skipped, fault = run(_send(settings, newsletter, new=new, quiet=json))
        if json:
            print_json(result.as_json())
        else:
            _summary(result, skipped)
        if fault is not None:
            errors.print(f"error: {fault}", markup=False, highlight=False, soft_wrap=True)
        if (
            fault
            or result.failed
            or result.status in (EditionStatus.PAUSED, EditionStatus.CANCELLED)
            or result.unfinished
        ):
            raise typer.Exit(EXIT_FAILED)


async def _send(
    settings: Settings, newsletter: str | None, *, new: bool, quiet: bool
) -> tuple[EditionReport, Reasons, ConfigurationFault | None]:
    """The edition's report after sending, why its skipped readers were skipped, and the
    configuration fault that stopped it, if any."""
    import asyncio
    import signal

    from newsletter.cli.progress import SendProgress, retrying_now, skip_reasons
    from newsletter.context import open_context
    from newsletter.delivery.worker import ConfigurationFault
    from newsletter.editions import service
    from newsletter.editions.sending import worker_for
    from newsletter.rendering.dkim import check_key

    check_key(settings.dkim)
    async with open_context(settings) as context:
        edition = await service.start_edition(context, newsletter, new=new)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        worker = worker_for(context, only={edition.id}, exit_when_idle=True)
        before = await service.report(context, edition.id)
        work = asyncio.create_task(worker.run(stopping))
        fault: ConfigurationFault | None = None
        with SendProgress(before, shown=not quiet) as bar:
            try:
                while not work.done():
                    retrying = await retrying_now(context, before, worker.stats)
                    bar.follow(worker.stats, retrying)
                    await asyncio.wait({work}, timeout=0.5)
                await work
            except ConfigurationFault as exc:
                fault = exc
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            after = await service.report(context, edition.id)
            bar.settle(after)
        return after, [] if quiet else await skip_reasons(context, edition.id), fault


def _summary(result: EditionReport, skipped: Reasons) -> None:
    from rich.table import Table

    from newsletter.cli.progress import SKIP_REASONS, said, tally

    table = Table(title=f"Edition {result.id}: {result.newsletter} {result.date} ({result.status})")
    for status in SUMMARY_COLUMNS:
        table.add_column(status, justify="right")
    table.add_row(*(str(result.counts.get(s, 0)) for s in SUMMARY_COLUMNS))
    console.print(table)
    console.print(f"edition {result.id}: {said(tally(result.counts))}", markup=False, highlight=False)
    for reason, count in skipped:
        console.print(f"{count} skipped: {SKIP_REASONS.get(reason, reason)}", markup=False, highlight=False)
    if result.returned:
        came_back = ", ".join(
            f"{count} {RETURNED.get(kind, kind)}" for kind, count in sorted(result.returned.items())
        )
        console.print(f"came back after the relay accepted them: {came_back}", markup=False, highlight=False)
    if result.pause_reason:
        console.print(result.pause_reason, markup=False)
    if result.waiting_reason:
        console.print(f"waiting on configuration: {result.waiting_reason}", markup=False)
    if result.unfinished and result.status == EditionStatus.SENDING:
        console.print(f"{result.unfinished} not finished yet: run `newsletter send` again to continue.")


def _dry_run(settings: Settings, newsletter: str | None, json: bool) -> None:
    from rich.table import Table

    from newsletter.editions.trial import dry_run
    from newsletter.rendering.size import clipping_warning

    async def work(context: AppContext) -> None:
        planned = await dry_run(context, newsletter)
        if json:
            print_json([vars(p) for p in planned])
            return
        table = Table(title="Dry run: nothing sent, nothing recorded")
        for column in ("sections", "readers", "articles", "subject", "bytes", "HTML bytes"):
            table.add_column(column)
        cautions: list[str] = []
        for p in planned:
            sections = ", ".join(p.sections) or "all"
            size = str(p.message_bytes) if p.sends else "skipped (nothing new)"
            html = str(p.html_bytes) if p.sends else ""
            table.add_row(sections, str(p.recipients), str(p.articles), p.subject, size, html)
            if caution := clipping_warning(p.html_bytes, what=f"the variant for {sections}"):
                cautions.append(caution)
        console.print(table)
        console.print(f"{sum(p.recipients for p in planned if p.sends)} messages would be sent.")
        for caution in cautions:
            errors.print(f"warning: {caution}", markup=False, highlight=False, soft_wrap=True)

    with_context(settings, work)


def _test_copy(settings: Settings, newsletter: str | None, to: str, json: bool) -> None:
    from email_validator import EmailNotValidError, validate_email

    from newsletter.delivery.decisions import delivered
    from newsletter.delivery.smtp import SmtpUnavailable
    from newsletter.editions.trial import send_test_copy

    try:
        address = validate_email(to, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        fail(f"--to: {exc}")

    async def work(context: AppContext) -> int:
        try:
            reply = await send_test_copy(context, newsletter, address)
        except SmtpUnavailable as exc:
            console.print(f"SMTP server unavailable: {exc}", markup=False)
            return EXIT_FAILED
        if json:
            print_json({"to": address, "code": reply.code, "reply": reply.text})
        else:
            console.print(f"test copy to {address}: {reply}", markup=False)
        return 0 if delivered(reply) else EXIT_FAILED

    code = with_context(settings, work)
    if code:
        raise typer.Exit(code)


EditionId = Annotated[int, typer.Argument(help="Edition id (see `newsletter editions list`).")]


@app.command("list")
def list_(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Editions, newest first, with counts by delivery status."""
    from rich.table import Table

    from newsletter.editions import service

    settings = load(config)
    reports = with_context(settings, lambda context: service.list_reports(context))
    if json:
        print_json([r.as_json() for r in reports])
        return
    table = Table()
    for column in ("id", "newsletter", "date", "status", "total", "sent", "skipped", "failed", "pending"):
        table.add_column(column)
    for r in reports:
        c = r.counts
        table.add_row(
            str(r.id),
            r.newsletter,
            r.date + (f" #{r.sequence}" if r.sequence else ""),
            r.status + (" (waiting on configuration)" if r.waiting_reason else ""),
            str(r.total),
            str(c[DeliveryStatus.SENT]),
            str(c[DeliveryStatus.SKIPPED]),
            str(c[DeliveryStatus.FAILED]),
            str(r.unfinished),
        )
    console.print(table)


@app.command()
def show(
    edition: EditionId,
    failures: Annotated[
        bool, typer.Option("--failures", help="Also list the deliveries that failed (see --status).")
    ] = False,
    status: Annotated[
        str, typer.Option("--status", help=f"With --failures, list these: {', '.join(LISTABLE)}.")
    ] = "failed",
    page: Annotated[int, typer.Option("--page", min=1, max=2**31 - 1, help="With --failures.")] = 1,
    per_page: Annotated[int, typer.Option("--per-page", min=1, max=1000, help="With --failures.")] = 50,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """One edition's progress as counts by delivery status; with --failures, why messages failed."""
    from newsletter.cli.progress import skip_reasons
    from newsletter.editions import service

    settings = load(config)

    async def work(context: AppContext) -> tuple[EditionReport, Reasons, DeliveryPage | None]:
        listed = None
        if failures:
            listed = await service.deliveries(context, edition, status=status, page=page, per_page=per_page)
        skipped = [] if json else await skip_reasons(context, edition)
        return await service.report(context, edition), skipped, listed

    result, skipped, listed = with_context(settings, work)
    if json:
        print_json({**result.as_json(), **({"failures": listed.as_json()} if listed else {})})
        return
    _summary(result, skipped)
    if listed is not None:
        _failures(listed)


def _failures(listed: DeliveryPage) -> None:
    from rich.table import Table

    table = Table(title=f"{listed.status}: {listed.total} (page {listed.page})")
    for column in ("address", "attempts", "last reply", "relay", "when"):
        table.add_column(column)
    for row in listed.rows:
        when = row.updated_at.strftime("%Y-%m-%d %H:%M:%S") if row.updated_at else ""
        table.add_row(row.email or "(erased)", str(row.attempts), row.reply or "", row.relay or "", when)
    console.print(table)


@app.command()
def resume(edition: EditionId, config: ConfigOption = None) -> None:
    """Continue a paused edition (it will not pause itself again)."""
    from newsletter.editions import service
    from newsletter.editions.sending import build_pending

    settings = load(config)

    async def work(context: AppContext) -> EditionReport:
        result = await service.resume(context, edition)
        if result.status == EditionStatus.BUILDING:  # paused before it was built: build it now
            await build_pending(context, [edition])
            result = await service.report(context, edition)
        return result

    result = with_context(settings, work)
    console.print(f"edition {result.id} is {result.status}; workers continue it.")


@app.command()
def cancel(edition: EditionId, config: ConfigOption = None) -> None:
    """Stop further sends of an edition: what is not yet sent is skipped."""
    from newsletter.editions import service

    settings = load(config)
    result = with_context(settings, lambda context: service.cancel(context, edition))
    skipped = result.counts[DeliveryStatus.SKIPPED]
    console.print(f"edition {result.id} cancelled; {skipped} deliveries skipped.")


@app.command()
def unpublish(edition: EditionId, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Take an edition off the web archive: its page, its index row and its feed entry."""
    from newsletter.archive import operators

    state = with_context(load(config), lambda context: operators.unpublish(context, edition))
    _show_archive_state(state, json)


@app.command()
def publish(edition: EditionId, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Put an edition taken off the web archive back."""
    from newsletter.archive import operators

    state = with_context(load(config), lambda context: operators.republish(context, edition))
    _show_archive_state(state, json)


def _show_archive_state(state: ArchiveState, json: bool) -> None:
    if json:
        print_json(state.as_json())
    elif state.published:
        console.print(f"edition {state.edition} is on the web archive: {state.url}")
    elif state.unpublished_at is not None:
        console.print(f"edition {state.edition} is off the web archive (taken down).")
    else:
        console.print(
            f"edition {state.edition} is not taken down, but not on the web archive either "
            "(not sent to anyone yet, cancelled, or its newsletter's archive is off)."
        )
