"""`newsletter send`'s bar and summary: the ledger's counts, and why readers were skipped."""

from __future__ import annotations

import json
import re
from pathlib import Path

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.delivery.store import skip_for
from newsletter.editions.service import start_edition
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter
from tests.support.smtp import FaultyMailbox, SmtpServer


def said(counts: dict[str, int]) -> str:
    """The ledger's counts as the bar and the summary line give them."""
    return (
        f"sent {counts['sent']} · skipped {counts['skipped']} · failed {counts['failed']} "
        f"· retrying {counts['retry']}"
    )


def shown(edition: int, *, cwd: Path, env: dict[str, str]) -> dict[str, int]:
    result = newsletter("editions", "show", str(edition), "--json", cwd=cwd, env=env)
    counts: dict[str, int] = json.loads(result.stdout)["counts"]
    return counts


async def test_sent_skipped_and_failed_are_counted_apart(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    """Before, the bar read "7/7 sent 2" with 4 readers skipped and one failed."""
    await add_articles(context, 3, sections=["World"])
    await add_subscribers(context, 3, sections=["World"])  # reader1..reader3
    await add_subscribers(context, 4, sections=["Energy"], prefix="energy")  # nothing new for them

    def reply(address: str, attempt: int) -> str | None:
        if address.startswith("reader2@") and attempt == 1:
            return "451 4.3.0 try again later"
        return "550 5.1.1 no such user" if address.startswith("reader3@") else None

    with SmtpServer(FaultyMailbox(rcpt=reply)) as server:
        env = environment_for(
            settings, NEWSLETTER_SMTP__PORT=str(server.port), NEWSLETTER_DELIVERY__PAUSE_FAILURE_RATE="1"
        )
        result = newsletter("send", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr  # one failed
    counts = shown(1, cwd=tmp_path, env=env)
    assert said(counts) == "sent 2 · skipped 4 · failed 1 · retrying 0"
    bar = next(line for line in result.stdout.splitlines() if line.startswith("edition 1 "))
    assert re.search(rf"\b7/7 {said(counts)}\b", bar), bar
    assert f"edition 1: {said(counts)}\n" in result.stdout
    assert "4 skipped: no new articles in the sections they chose\n" in result.stdout


async def test_skips_are_counted_by_reason(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    await add_articles(context, 3, sections=["World"])
    readers = await add_subscribers(context, 3, sections=["World"])
    await add_subscribers(context, 2, sections=["Energy"], prefix="energy")
    edition = await start_edition(context, "daily")  # built: 3 queued, 2 skipped
    async with context.db.session() as session, session.begin():
        await skip_for(session, readers[0], "daily")  # left before the send
    env = environment_for(settings)
    result = newsletter("send", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert smtp_server.handler.count() == 2
    counts = shown(edition.id, cwd=tmp_path, env=env)
    assert said(counts) == "sent 2 · skipped 3 · failed 0 · retrying 0"
    assert f"5/5 {said(counts)}" in result.stdout
    reasons = "2 skipped: no new articles in the sections they chose\n1 skipped: unsubscribed\n"
    assert reasons in result.stdout
    again = newsletter("editions", "show", str(edition.id), cwd=tmp_path, env=env)
    assert reasons in again.stdout and f"edition {edition.id}: {said(counts)}" in again.stdout


async def test_json_output_keeps_its_shape(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    await add_articles(context, 2, sections=["World"])
    await add_subscribers(context, 2, sections=["World"])
    await add_subscribers(context, 1, sections=["Energy"], prefix="energy")
    result = newsletter("send", "--json", cwd=tmp_path, env=environment_for(settings))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert report["counts"]["sent"] == 2 and report["counts"]["skipped"] == 1
