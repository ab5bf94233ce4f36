"""100,000 CSV rows imported without loading them all: memory stays flat as the file grows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.context import AppContext
from newsletter.database.models import Subscriber
from tests.subscriptions.helpers import count
from tests.support.process import clean_environment

# Runs the CLI and reports the process's peak resident memory on stderr.
MEASURED = """
import resource, sys
from newsletter.cli.main import app
try:
    app(sys.argv[1:])
finally:
    print(f"maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def write_rows(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,sections,confirmed\n")
        for i in range(rows):
            handle.write(f"reader{i}@example{i % 97}.com,,true\n")
    return path


def import_measured(path: Path, database_url: str) -> tuple[dict[str, object], int]:
    env = clean_environment(NEWSLETTER_DATABASE__URL=database_url)
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, "subscribers", "import", str(path), "--json"],
        cwd=path.parent, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    peak = int(result.stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    return json.loads(result.stdout), peak


@pytest.mark.slow
async def test_a_100k_row_import_is_streamed(database_url: str, context: AppContext, tmp_path: Path) -> None:
    small, small_peak = import_measured(write_rows(tmp_path / "small.csv", 1_000), database_url)
    big, big_peak = import_measured(write_rows(tmp_path / "big.csv", 100_000), database_url)
    assert (small["added"], big["added"], big["updated"], big["invalid"]) == (1_000, 99_000, 1_000, 0)
    assert await count(context, Subscriber) == 100_000
    # Holding 100,000 parsed rows would take well over 100 MB; streaming adds a few.
    assert big_peak - small_peak < 40 * 1024, (small_peak, big_peak)
