"""`newsletter subscribers list`: a header and columns aligned by terminal cells."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.cells import cell_len

from newsletter.cli.subscribers import Columns
from newsletter.config import Settings
from newsletter.context import AppContext
from tests.support.factories import add_subscribers
from tests.support.process import environment_for, newsletter

DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def starts(line: str, marks: list[str]) -> list[int]:
    """The cell (not character) at which each mark begins in the line, searched left to right."""
    found, offset = [], 0
    for mark in marks:
        match = re.compile(mark).search(line, offset)
        assert match, (mark, line)
        found.append(cell_len(line[: match.start()]))
        offset = match.end()
    return found


async def test_columns_line_up_with_wide_addresses(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    await add_subscribers(context, 1, prefix="a", domain="readers.example")
    await add_subscribers(context, 1, prefix="用户", domain="例子.广告")
    await add_subscribers(context, 1, prefix="📰news", domain="readers.example")
    await add_subscribers(context, 1, prefix="z", domain="x.example", status="pending")
    env = environment_for(settings, COLUMNS="80")
    result = newsletter("subscribers", "list", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    header, *rows, total = result.stdout.splitlines()
    assert header.split() == ["email", "status", "created", "confirmed", "newsletters"]
    assert len(rows) == 4 and total == "4 subscriber(s)"
    assert any("用户2@例子.广告" in row for row in rows) and any("📰news3@" in row for row in rows)
    columns = starts(header, ["status", "created", "confirmed", "newsletters"])
    for row in rows:
        confirmed = DATE.pattern if "active" in row else "-"
        assert starts(row, [r"\b(active|pending)\b", DATE.pattern, confirmed, "daily"]) == columns, row


async def test_json_is_unchanged(settings: Settings, context: AppContext, tmp_path: Path) -> None:
    await add_subscribers(context, 1, prefix="用户", domain="例子.广告")
    result = newsletter("subscribers", "list", "--json", cwd=tmp_path, env=environment_for(settings))
    assert result.returncode == 0, result.stderr
    assert "用户1@例子.广告" in result.stdout  # not \\u-escaped
    (item,) = json.loads(result.stdout)
    assert set(item) == {"email", "status", "created_at", "confirmed_at", "newsletters"}
    assert item["newsletters"] == {"daily": []}


class FewSizingRows(Columns):
    SIZING_ROWS = 2


def test_rows_past_the_sizing_ones_keep_the_columns() -> None:
    out = io.StringIO()
    table = FewSizingRows(out)
    for email in ("a@x.example", "用户@例子.广告", "b@x.example", "很长的用户名@例子.广告"):
        table.add((email, "active", "2026-01-01T00:00", "-", "daily"))
    table.close()
    header, first, second, third, longer = out.getvalue().splitlines()
    column = cell_len(header[: header.index("status")])
    assert column == cell_len("用户@例子.广告") + len(Columns.GAP)
    for line in (first, second, third):
        assert cell_len(line[: line.index("active")]) == column
    # Wider than the rows that set the widths: only its own line is pushed along.
    assert longer.startswith("很长的用户名@例子.广告  active")
    assert not any(line.endswith(" ") for line in (header, first, longer))
