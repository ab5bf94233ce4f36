"""`newsletter preview` as an operator runs it, on both database backends."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import func, select

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Base
from newsletter.personal.links import token_signer
from newsletter.personal.tokens import Purpose
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter

SECTIONS = ("World", "Business", "Politics")


async def row_counts(context: AppContext) -> dict[str, int]:
    async with context.db.session() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


async def preview(settings: Settings, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(
        newsletter, "preview", *args, cwd=tmp_path, env=environment_for(settings)
    )
    return result.returncode, result.stdout, result.stderr


def parsed(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def token_of(url: str) -> str:
    return url.strip("<>").rsplit("/", 1)[1]


async def test_preview_for_a_subscriber_uses_their_sections_and_records_nothing(
    context: AppContext, settings: Settings, tmp_path: Path
) -> None:
    await add_articles(context, 9, sections=SECTIONS)
    [subscriber_id] = await add_subscribers(context, 1, sections=["Business"])
    before = await row_counts(context)
    code, out, err = await preview(
        settings, tmp_path, "daily", "--out", "digest", "--email", "reader1@readers.example"
    )
    assert code == 0, err
    assert "3 article(s) for reader1@readers.example" in out
    html = (tmp_path / "digest.html").read_text()
    text = (tmp_path / "digest.txt").read_text()
    assert "Story number 1:" in html and "Story number 4:" in html and "Story number 7:" in html
    assert "Story number 0:" not in html and "Story number 2:" not in text
    assert "__NL_" not in html + text
    message = parsed(tmp_path / "digest.eml")
    assert message["To"] == "reader1@readers.example"
    signer = token_signer(settings)
    unsubscribe = signer.verify(Purpose.UNSUBSCRIBE, token_of(str(message["List-Unsubscribe"])))
    assert (unsubscribe.subscriber_id, unsubscribe.newsletter_id) == (subscriber_id, "daily")
    assert f"{settings.site.base_url}/unsubscribe/" in text
    assert await row_counts(context) == before


async def test_preview_without_email_shows_every_section(
    context: AppContext, settings: Settings, tmp_path: Path
) -> None:
    await add_articles(context, 6, sections=SECTIONS)
    code, out, err = await preview(settings, tmp_path)
    assert code == 0, err
    message = parsed(tmp_path / "preview.eml")
    body = message.get_body(("plain",))
    assert body is not None
    content = body.get_content()
    assert all(f"Story number {n}:" in content for n in range(6))
    signer = token_signer(settings)
    assert signer.verify(Purpose.UNSUBSCRIBE, token_of(str(message["List-Unsubscribe"]))).subscriber_id == 0
    assert "note:" not in out


async def test_preview_of_an_empty_edition_says_it_would_send_nothing(
    context: AppContext, settings: Settings, tmp_path: Path
) -> None:
    code, out, err = await preview(settings, tmp_path, "--out", "empty")
    assert code == 0, err
    assert "would send nothing" in out
    assert "No new stories" in (tmp_path / "empty.txt").read_text()


async def test_unknown_newsletter_or_subscriber_exits_2_writing_nothing(
    context: AppContext, settings: Settings, tmp_path: Path
) -> None:
    code, _, err = await preview(settings, tmp_path, "weekly")
    assert code == 2 and err.count("\n") == 1 and "'weekly'" in err
    code, _, err = await preview(settings, tmp_path, "--email", "nobody@readers.example")
    assert code == 2 and err.count("\n") == 1 and "--email" in err and "nobody@readers.example" in err
    code, _, err = await preview(settings, tmp_path, "--out", "missing/folder/x")
    assert code == 2 and "--out" in err
    assert not any(name.startswith("preview.") for name in os.listdir(tmp_path))
