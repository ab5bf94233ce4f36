"""Ingest: `newsletter ingest` of 50 feeds of 50 entries each (London Daily's sample items, each feed
under its own links), served over HTTP on loopback, into a fresh SQLite database; wall seconds
from start to exit, against the same command run again when every feed answers 304 Not Modified
(start-up, fetching and bookkeeping without parsing or storing anything). Started both as the
`newsletter` script (as the systemd unit runs it) and as `python -m newsletter`: a parsing
process started from the script imports the script again, the whole CLI, before its first feed.

    python -m bench --only ingest [--quick]

The `newsletter` processes import their code as any child does, so PYTHONPATH=/elsewhere
measures the code there (how docs/benchmarks.md compared the code before and after issue 18).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.figures import Figure, at_most, ratio, skipped
from bench.scratch import Scratch, scratch
from newsletter.articles.sample import write_fresh_sample_feed
from newsletter.context import open_context
from newsletter.database.models import Article
from tests.support.http import FeedServer, Route

CASE = "ingest"
FEEDS, ENTRIES = 50, 50
AIM_SECONDS = 5.0
SCRIPT = Path(sys.executable).with_name("newsletter")
STARTS = {
    "the `newsletter` script": [str(SCRIPT)],
    "`python -m newsletter`": [sys.executable, "-m", "newsletter"],
}
_ITEM = re.compile(r"<item>.*?</item>", re.DOTALL)
_SITE = "https://londondaily.example/"


def run(quick: bool) -> list[dict[str, Any]]:
    rounds = 1 if quick else 3
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, FeedServer() as server:
        feeds = _serve_feeds(server, Path(tmp))
        for n, (name, command) in enumerate(STARTS.items()):
            if not Path(command[0]).exists():
                rows.append(skipped(CASE, f"{command[0]} not found"))
                continue
            folder = Path(tmp) / f"start-{n}"
            timings = [_round(folder / f"round-{r}", command, feeds) for r in range(rounds)]
            rows.append(_figure(name, timings).row())
    return rows


def _serve_feeds(server: FeedServer, folder: Path) -> list[str]:
    sample = write_fresh_sample_feed(folder / "sample.xml", datetime.now(UTC)).read_text()
    items = _ITEM.findall(sample)[:ENTRIES]
    head, tail = sample[: sample.index("<item>")], "</channel></rss>\n"
    urls = []
    for n in range(FEEDS):
        body = (head + "".join(items) + tail).replace(_SITE, f"{_SITE}feed-{n}/")
        urls.append(server.route(f"/feed-{n}.xml", Route(body=body.encode(), etag=f'"feed-{n}"')))
    return urls


def _round(folder: Path, command: list[str], feeds: list[str]) -> dict[str, Any]:
    with scratch("sqlite", folder) as db:
        with db.config.open("a") as config:
            for n, url in enumerate(feeds):
                config.write(f'\n[[feeds]]\nurl = "{url}"\nname = "Feed {n}"\nallow_private = true\n')
        asyncio.run(_migrate(db))  # before timing: a first command would migrate the database
        first = _timed([*command, "ingest"], db)
        again = _timed([*command, "ingest"], db)
        stored = asyncio.run(_articles(db))
    if stored != FEEDS * ENTRIES:
        raise RuntimeError(f"{stored:,} articles stored, {FEEDS * ENTRIES:,} expected")
    return {"seconds": first, "not_modified_seconds": again, "articles": stored}


def _timed(command: list[str], db: Scratch) -> float:
    started = time.monotonic()
    done = subprocess.run(command, cwd=db.folder, env=db.env(), capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {done.returncode}: {(done.stdout + done.stderr)[-500:]}"
        )
    return seconds


async def _migrate(db: Scratch) -> None:
    async with open_context(db.settings()):
        pass


async def _articles(db: Scratch) -> int:
    async with open_context(db.settings(), migrate=False) as context, context.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Article)) or 0)


def _figure(start: str, timings: list[dict[str, Any]]) -> Figure:
    seconds = statistics.median(t["seconds"] for t in timings)
    baseline = statistics.median(t["not_modified_seconds"] for t in timings)
    runs = ", ".join(f"{t['seconds']:.2f}" for t in timings)
    return Figure(
        CASE,
        f"ingest, {FEEDS} feeds × {ENTRIES} entries over HTTP, sqlite, {start}",
        ours=seconds,
        unit="s",
        baseline=baseline,
        baseline_name="the same again, every feed 304 Not Modified",
        ratio=ratio(seconds, baseline),
        aim=f"< {AIM_SECONDS:g} s",
        met=at_most(seconds, AIM_SECONDS),
        note=f"median of {len(timings)} ({runs} s); {FEEDS * ENTRIES:,} articles stored",
        details={"rounds": timings},
    )
