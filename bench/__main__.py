"""`python -m bench [--quick] [--only CASE ...] [--markdown PATH] [--full-send]`

Runs the benchmark cases (render, delivery, scale, workers, signup, ingest, bounces, archive,
clicks, console), prints a table of each figure beside its baseline with their ratio and the aim,
and the machine it ran on; writes bench/results/<timestamp>.json, and with --markdown the tables for
docs/benchmarks.md.
Exit status 1 when a case failed to run (figures that miss their aim do not fail the run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench import machine, report
from bench.suite import CASES, run_cases


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and short windows (CI: under 2 minutes)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(CASES), metavar="CASE", help=f"from: {', '.join(CASES)}"
    )
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the tables as Markdown")
    parser.add_argument(
        "--full-send",
        action="store_true",
        help="scale: send every edition to the end (1,000,000: many minutes)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console(width=200) if not sys.stdout.isatty() else Console()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    clock, load = time.monotonic(), os.getloadavg()[0]
    cases = run_cases(console, args.only or list(CASES), quick=args.quick, full_send=args.full_send)
    facts = machine.facts()
    facts["suite"] = f"{'quick' if args.quick else 'full'}, {time.monotonic() - clock:.0f} s"
    # Other work on the machine shows here (these machines are shared and noisy).
    facts["load average"] = f"{load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (1 min)"
    report.print_run(console, facts, cases)
    path = report.write_json(started, args.quick, facts, cases)
    console.print(f"results: {path}", highlight=False)
    if args.markdown:
        args.markdown.write_text(report.markdown(facts, cases))
        console.print(f"markdown: {args.markdown}", highlight=False)
    return 1 if any(result["error"] for result in cases.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
