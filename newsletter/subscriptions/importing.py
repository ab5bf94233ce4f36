"""`subscribers import`: a CSV file streamed in batches, all or nothing unless told to skip bad rows.

Two passes over the file: the first validates every row without touching the database
(so a bad file costs no write lock), the second writes in batches inside one transaction.
Memory stays flat whatever the file's size.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.errors import InvalidInput
from newsletter.states import SubscriberStatus
from newsletter.subscriptions.adding import Outcome, add_batch
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import check_timezone
from newsletter.subscriptions.csvfiles import CsvRows
from newsletter.subscriptions.forms import IMPORTABLE, NewSubscriber, entry_choices

BATCH_ROWS = 1000
# Problems listed one by one in a report; beyond this they are only counted.
MAX_LISTED = 1000
_LIST_SEPARATORS = re.compile(r"[;|]")
_TRUE = ("true", "yes", "y", "1")
_FALSE = ("false", "no", "n", "0", "")


@dataclass(frozen=True)
class RowProblem:
    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    updated: int = 0
    invalid: int = 0
    suppressed: int = 0
    problems: list[RowProblem] = field(default_factory=list)  # invalid and suppressed rows
    written: bool = False

    def note(self, problem: RowProblem) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)


def parse_row(settings: Settings, columns: list[str], cells: list[str], *, confirmed: bool) -> NewSubscriber:
    """One CSV record; InvalidInput names the column."""
    if len(cells) > len(columns):
        raise InvalidInput("row", f"{len(cells)} cells but the header has {len(columns)} columns")
    row = dict(zip(columns, cells, strict=False))
    row_status = row.get("status", "").strip().lower()
    if row_status and row_status not in IMPORTABLE:
        raise InvalidInput("status", f"must be one of {', '.join(IMPORTABLE)} (got {row_status!r})")
    said_confirmed = _flag(row.get("confirmed", ""))
    return NewSubscriber(
        address=normalise_address(
            row["email"], field="email", local_domains=settings.subscriptions.allow_local_domains
        ),
        choices=entry_choices(settings, _listed(row.get("newsletters")), _listed(row.get("sections"))),
        timezone=check_timezone("timezone", row.get("timezone")),
        confirmed=row_status == SubscriberStatus.ACTIVE
        or said_confirmed
        or (confirmed and row_status != SubscriberStatus.PENDING),
        unsubscribed=row_status == SubscriberStatus.UNSUBSCRIBED,
    )


def _listed(cell: str | None) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATORS.split(cell or "") if part.strip()]


def _flag(cell: str) -> bool:
    value = cell.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput("confirmed", f"must be true or false (got {cell!r})")


Batch = list[tuple[int, NewSubscriber]]


def _batches(settings: Settings, path: Path, report: ImportReport, *, confirmed: bool) -> Iterator[Batch]:
    """Valid rows in batches; invalid ones are counted and noted in the report."""
    rows = CsvRows(path)
    batch: Batch = []
    for line, cells in rows:
        report.rows += 1
        try:
            batch.append((line, parse_row(settings, rows.columns, cells, confirmed=confirmed)))
        except InvalidInput as exc:
            report.invalid += 1
            report.note(RowProblem(line, exc.field, exc.message))
            continue
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


async def _next_batch(batches: Iterator[Batch]) -> Batch | None:
    """Read and validated on a thread: file I/O and email-validator would block the loop."""
    return await asyncio.to_thread(next, batches, None)


# What an import has done so far: ("checking" | "writing", rows so far, rows in all once known).
Progress = Callable[[str, int, int | None], None]


async def import_csv(
    context: AppContext,
    path: Path,
    *,
    skip_invalid: bool = False,
    confirmed: bool = False,
    actor: Actor | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate the whole file, then (if every row is valid, or `skip_invalid`) write it in one transaction.

    Raises InvalidInput for a problem with the file itself (unreadable, not UTF-8, broken
    quoting, no header): nothing is written then either.
    """
    settings = context.settings
    told = progress or (lambda phase, done, total: None)
    checked = ImportReport()
    batches = _batches(settings, path, checked, confirmed=confirmed)
    while await _next_batch(batches) is not None:
        told("checking", checked.rows, None)
    told("checking", checked.rows, checked.rows)
    if checked.invalid and not skip_invalid:
        return checked
    report = ImportReport()
    batches = _batches(settings, path, report, confirmed=confirmed)
    async with context.db.session() as session, session.begin():
        while (batch := await _next_batch(batches)) is not None:
            entries = [e for _, e in batch]
            results = await add_batch(
                session, settings=settings, entries=entries, actor=actor or Actor("import")
            )
            for (line, _), result in zip(batch, results, strict=True):
                _count(report, line, result.outcome, result.reason)
            told("writing", report.rows, checked.rows)
    report.written = True
    return report


def _count(report: ImportReport, line: int, outcome: Outcome, reason: str | None) -> None:
    if outcome is Outcome.ADDED:
        report.added += 1
    elif outcome is Outcome.UPDATED:
        report.updated += 1
    else:
        report.suppressed += 1
        report.note(RowProblem(line, "email", f"suppressed: {reason}"))
