"""A run's figures as a rich table on the terminal, as JSON in bench/results/, and as Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.figures import number

RESULTS = Path(__file__).with_name("results")
COLUMNS = ("case", "measure", "ours", "baseline", "ratio", "aim", "met?", "note")


def cells(row: dict[str, Any]) -> tuple[str, ...]:
    if str(row["what"]).startswith("skipped"):
        return (row["case"], row["what"], "", "", "", "", "", "")
    baseline = number(row["baseline"], row["unit"])
    if row["baseline_name"] and row["baseline"] is not None:
        baseline = f"{baseline} ({row['baseline_name']})"
    met = {True: "yes", False: "NO", None: ""}[row["met"]]
    ratio = "" if row["ratio"] is None else f"{row['ratio']:g}"
    return (
        row["case"],
        row["what"],
        number(row["ours"], row["unit"]),
        baseline,
        ratio,
        row["aim"],
        met,
        row["note"],
    )


def print_run(console: Console, machine: dict[str, str], cases: dict[str, dict[str, Any]]) -> None:
    table = Table(title="newsletter benchmarks", show_lines=False)
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("ours", "ratio") else "left")
    for name, result in cases.items():
        for row in result["rows"]:
            table.add_row(*cells(row))
        if result["error"]:
            table.add_row(name, f"[red]error: {result['error']}[/red]", *[""] * 6)
    console.print(table)
    console.print(" · ".join(f"{key} {value}" for key, value in machine.items()), highlight=False)


def write_json(started: str, quick: bool, machine: dict[str, str], cases: dict[str, dict[str, Any]]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{started.replace(':', '').replace('-', '')}.json"
    payload = {"started": started, "quick": quick, "machine": machine, "cases": cases}
    path.write_text(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")
    return path


def markdown(machine: dict[str, str], cases: dict[str, dict[str, Any]]) -> str:
    lines = ["| what | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in machine.items()]
    for name, result in cases.items():
        lines += ["", f"### {name} ({result['seconds']:.0f} s)", ""]
        if result["error"]:
            lines.append(f"error: {result['error']}")
            continue
        lines += ["| " + " | ".join(COLUMNS[1:]) + " |", "|---|---:|---|---:|---|---|---|"]
        lines += ["| " + " | ".join(_escape(c) for c in cells(row)[1:]) + " |" for row in result["rows"]]
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")
