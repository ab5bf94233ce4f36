"""CSV import (streamed, all or nothing, line numbers) and export (streamed, formula-safe)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from newsletter.context import AppContext
from newsletter.database.models import Subscriber
from newsletter.errors import InvalidInput
from newsletter.subscriptions.csvfiles import neutralise, restore
from newsletter.subscriptions.exporting import STREAM_ROWS, export_csv
from newsletter.subscriptions.importing import import_csv
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import choices, count, nothing_stored, outbox, serve, subscriber
from tests.web.test_pages_signup import TWO_NEWSLETTERS

SECTIONS = {"sections": ["World", "Politics", "Business", "+Plus", "=Sum", "@Home"]}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


async def test_a_valid_file_is_imported(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings(newsletters=TWO_NEWSLETTERS, site=SECTIONS)
    text = (
        "Email,Newsletters,Sections,Status,Timezone\n"
        "active@example.com,daily|weekly,World;Politics,active,Europe/Paris\n"
        "pending@example.com,,,,\n"
        "\n"
        "left@example.com,daily,,unsubscribed,\n"
        "ACTIVE@example.com,weekly,,,\n"
    )
    async with serve(settings) as (_, context):
        report = await import_csv(context, write(tmp_path / "in.csv", text))
        counts = (report.rows, report.added, report.updated, report.invalid, report.written)
        assert counts == (4, 3, 1, 0, True)
        active = await subscriber(context, "active@example.com")
        pending = await subscriber(context, "pending@example.com")
        left = await subscriber(context, "left@example.com")
        assert active is not None and pending is not None and left is not None
        assert (active.status, active.timezone, active.source) == ("active", "Europe/Paris", "import")
        assert await choices(context, active.id) == {"weekly": "[]"}
        assert (pending.status, left.status) == ("pending", "unsubscribed")
        assert [m.subscriber_id for m in await outbox(context)] == [pending.id]


async def test_an_invalid_row_means_nothing_is_imported(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(site=SECTIONS)
    text = (
        "email,sections,confirmed\n"
        "ok@example.com,World,yes\n"
        "not-an-address,,\n"
        '"ok2@example.com","Politics\n'
        'continued",no\n'
        "ok3@example.com,Sport,\n"
        "ok4@example.com,,maybe\n"
        "ok5@example.com,,,extra\n"
    )
    async with serve(settings) as (_, context):
        report = await import_csv(context, write(tmp_path / "bad.csv", text))
        assert not report.written
        assert [(p.line, p.field) for p in report.problems] == [
            (3, "email"),
            (4, "sections[0]"),
            (6, "sections[0]"),
            (7, "confirmed"),
            (8, "row"),
        ]
        assert await nothing_stored(context)
        skipped = await import_csv(context, tmp_path / "bad.csv", skip_invalid=True)
        assert (skipped.written, skipped.added, skipped.invalid) == (True, 1, 5)
        assert await count(context, Subscriber) == 1


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("email\nok@example.com\nfran\xe7ois@example.com\n".encode("latin-1"), "enc.csv line 3"),
        ("email\nok@example.com\n".encode("utf-16"), "enc.csv line 1"),
        (b"email\nok@example.com\n\xff\xfe\n", "enc.csv line 3"),
        (b'email\n"ok@example.com\n"x"y@example.com",\n', "enc.csv line 2"),
        (b"mail\nok@example.com\n", "enc.csv line 1"),
        (b"email,newsleter\nok@example.com,daily\n", "enc.csv line 1"),
        (b"", "enc.csv"),
    ],
    ids=["latin-1", "utf-16", "stray-bytes", "broken-quotes", "no-email-column", "unknown-column", "empty"],
)
async def test_a_broken_file_is_refused_naming_the_line(
    context: AppContext, tmp_path: Path, content: bytes, where: str
) -> None:
    (tmp_path / "enc.csv").write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        await import_csv(context, tmp_path / "enc.csv", skip_invalid=True)
    assert caught.value.field == where
    assert await nothing_stored(context)


async def test_a_utf8_file_with_a_byte_order_mark_imports(context: AppContext, tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", "\ufeffemail\nzoë@example.com\n")
    report = await import_csv(context, path, confirmed=True)
    assert report.added == 1
    stored = await subscriber(context, "zoë@example.com")
    assert stored is not None and stored.status == "active"


def test_formula_cells_are_neutralised_and_restored() -> None:
    for cell in ("=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'quoted", "''=x"):
        assert neutralise(cell) == "'" + cell
        assert restore(neutralise(cell)) == cell
    for cell in ("plain@example.com", "World", "it's"):
        assert neutralise(cell) == cell and restore(cell) == cell
    # Two different addresses stay two different cells.
    assert neutralise("=x@example.com") != neutralise("'=x@example.com")


async def test_a_real_quote_led_address_survives_export_and_import(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """`=x@…` is neutralised to `'=x@…` on export; the real address `'=x@…` used to export the
    same, so importing the export merged the two readers (and activated the pending one)."""
    # Written as an export would write them: a leading quote escapes the cell.
    rows = "email,status\n'=x@example.com,active\n''=x@example.com,pending\n''y@example.com,active\n"
    async with serve(make_settings()) as (_, context):
        assert (await import_csv(context, write(tmp_path / "in.csv", rows))).added == 3
        out = tmp_path / "out.csv"
        assert await export_csv(context.db, out) == 3
    elsewhere = {"url": f"sqlite:///{tmp_path}/fresh.db"}
    async with serve(make_settings(database=elsewhere)) as (_, fresh):
        report = await import_csv(fresh, out)
        assert (report.added, report.updated, report.invalid) == (3, 0, 0)
        pending = await subscriber(fresh, "'=x@example.com")
        active = await subscriber(fresh, "=x@example.com")
        quoted = await subscriber(fresh, "'y@example.com")
    assert pending is not None and pending.status == "pending"
    assert active is not None and active.status == "active"
    assert quoted is not None


async def test_an_overlong_line_is_refused_before_it_is_read_whole(
    context: AppContext, tmp_path: Path
) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"email\nfirst@example.com\n")
        handle.write(b"x" * (100 * 1024 * 1024) + b"@example.com\n")
    with pytest.raises(InvalidInput) as caught:
        await import_csv(context, path, skip_invalid=True)
    assert caught.value.field == "huge.csv line 3" and "longer than" in caught.value.message
    assert await nothing_stored(context)


async def test_a_quoted_cell_spanning_many_lines_is_refused(context: AppContext, tmp_path: Path) -> None:
    cell = '"' + "World\n" * 18_000 + '"'  # each under the csv module's field limit; together not
    text = f"email,newsletters,sections,timezone\nfirst@example.com,{cell},{cell},{cell}\n"
    with pytest.raises(InvalidInput) as caught:
        await import_csv(context, write(tmp_path / "long.csv", text))
    assert "record over" in caught.value.message
    assert await nothing_stored(context)


async def test_export_neutralises_formulas_and_imports_back_unchanged(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(newsletters=TWO_NEWSLETTERS, site=SECTIONS)
    rows = (
        "email,newsletters,sections,status\n"
        "=cmd|'/Ccalc'!A0@example.com,weekly,+Plus;=Sum,active\n"
        "-minus@example.com,daily|weekly,daily:World;weekly:@Home,active\n"
        "+plus@example.com,weekly,,unsubscribed\n"
    )
    async with serve(settings) as (_, context):
        assert (await import_csv(context, write(tmp_path / "in.csv", rows))).added == 3
        out = tmp_path / "out.csv"
        assert await export_csv(context.db, out) == 3
        exported = read_csv(out)
        assert exported[0][:4] == ["email", "status", "newsletters", "sections"]
        cells = [cell for row in exported[1:] for cell in row]
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
        assert "'=cmd|'/Ccalc'!A0@example.com" in cells and "'+Plus;=Sum" in cells
        assert "daily:World;weekly:@Home" in cells
        assert not (tmp_path / "out.csv.partial").exists()
        active = await export_csv(context.db, tmp_path / "active.csv", status="active")
        assert active == 2
    before = {row[0]: row[:4] for row in exported[1:]}
    elsewhere = {"url": f"sqlite:///{tmp_path}/fresh.db"}
    async with serve(make_settings(newsletters=TWO_NEWSLETTERS, site=SECTIONS, database=elsewhere)) as (
        _,
        fresh,
    ):
        report = await import_csv(fresh, out)
        assert (report.added, report.invalid) == (3, 0)
        await export_csv(fresh.db, tmp_path / "again.csv")
    again = read_csv(tmp_path / "again.csv")
    assert {row[0]: row[:4] for row in again[1:]} == before


async def test_export_streams_subscribers_across_batches(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(newsletters=TWO_NEWSLETTERS)
    total = STREAM_ROWS + STREAM_ROWS // 2 + 7  # two rows each: subscribers straddle the batches
    lines = ["email,newsletters,confirmed"] + [f"s{i}@example.com,daily;weekly,true" for i in range(total)]
    async with serve(settings) as (_, context):
        report = await import_csv(context, write(tmp_path / "many.csv", "\n".join(lines) + "\n"))
        assert report.added == total
        assert await export_csv(context.db, tmp_path / "out.csv") == total
    exported = read_csv(tmp_path / "out.csv")[1:]
    assert len(exported) == total
    assert {row[0] for row in exported} == {f"s{i}@example.com" for i in range(total)}
    assert {row[2] for row in exported} == {"daily;weekly"}


async def test_export_to_an_unwritable_place_is_a_clear_error(context: AppContext, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        await export_csv(context.db, tmp_path / "missing-dir" / "out.csv")
    assert "cannot write" in caught.value.message


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))
