"""`newsletter send` and `newsletter editions …` as subprocesses, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, Edition
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter
from tests.support.smtp import FaultyMailbox, SmtpServer


async def test_send_delivers_and_reports(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    await add_articles(context, 5)
    await add_subscribers(context, 12)
    env = environment_for(settings)
    result = newsletter("send", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sent" in result.stdout
    assert smtp_server.handler.count() == 12
    listed = json.loads(newsletter("editions", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert listed[0]["status"] == "done" and listed[0]["counts"]["sent"] == 12
    again = newsletter("send", "--json", cwd=tmp_path, env=env)
    assert again.returncode == 0
    assert json.loads(again.stdout)["id"] == listed[0]["id"]  # today's edition continued, not repeated
    assert smtp_server.handler.count() == 12


async def test_send_exits_1_when_messages_fail(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    await add_articles(context, 2)
    await add_subscribers(context, 4)
    refusing = FaultyMailbox(rcpt=lambda address, attempt: "550 5.7.1 relaying denied")
    with SmtpServer(refusing) as server:
        env = environment_for(settings, NEWSLETTER_SMTP__PORT=str(server.port))
        result = newsletter("send", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["status"] == "paused" and "failed permanently" in report["pause_reason"]


async def test_dry_run_records_and_sends_nothing(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    await add_articles(context, 4)
    await add_subscribers(context, 7, sections=["World"])
    await add_subscribers(context, 3, prefix="everything")
    result = newsletter("send", "--dry-run", "--json", cwd=tmp_path, env=environment_for(settings))
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)
    assert sorted(p["recipients"] for p in planned) == [3, 7]
    assert all(p["message_bytes"] > 1000 for p in planned)
    async with context.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Edition)) == 0
    assert smtp_server.handler.count() == 0


async def test_a_test_copy_goes_to_one_address_only(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    await add_articles(context, 3)
    await add_subscribers(context, 5)
    result = newsletter(
        "send", "--to", "Editor@Newsroom.example", cwd=tmp_path, env=environment_for(settings)
    )
    assert result.returncode == 0, result.stderr
    assert smtp_server.handler.recipients() == ["Editor@newsroom.example"]
    message = smtp_server.handler.messages()[0].message()
    assert message["To"] == "Editor@newsroom.example"
    async with context.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 0


async def test_bad_usage_exits_2_with_one_line(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    env = environment_for(settings)
    for args, expected in (
        (("send", "weekly"), "unknown newsletter 'weekly'"),
        (("send", "--to", "not an address"), "--to"),
        (("editions", "show", "999"), "not found"),
    ):
        result = newsletter(*args, cwd=tmp_path, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr
        assert result.stderr.strip().count("\n") == 0


async def test_editions_show_resume_and_cancel(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    from newsletter.editions.service import start_edition

    await add_articles(context, 2)
    await add_subscribers(context, 6)
    edition = await start_edition(context, "daily")
    env = environment_for(settings)
    shown = json.loads(
        newsletter("editions", "show", str(edition.id), "--json", cwd=tmp_path, env=env).stdout
    )
    assert shown["counts"]["queued"] == 6 and shown["status"] == "sending"
    not_paused = newsletter("editions", "resume", str(edition.id), cwd=tmp_path, env=env)
    assert not_paused.returncode == 2 and "not paused" in not_paused.stderr
    cancelled = newsletter("editions", "cancel", str(edition.id), cwd=tmp_path, env=env)
    assert cancelled.returncode == 0 and "6 deliveries skipped" in cancelled.stdout
    assert smtp_server.handler.count() == 0
