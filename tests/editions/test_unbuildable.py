"""An edition whose messages cannot be built (an operator's template at fault, a newsletter no
longer configured) pauses with the reason, fails nobody's delivery, keeps its articles, and
sends them all once resumed after the fix."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import select

from newsletter.context import AppContext, open_context
from newsletter.database.models import Delivery, Edition
from newsletter.editions import service
from newsletter.editions.sending import drain
from tests.conftest import SettingsFactory
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter
from tests.support.smtp import SmtpServer

DAILY = {"id": "daily", "name": "The Daily Briefing"}


async def delivery_statuses(context: AppContext, edition_id: int) -> Counter[str]:
    async with context.db.session() as session:
        rows = await session.scalars(select(Delivery.status).where(Delivery.edition_id == edition_id))
        return Counter(rows.all())


def broken_templates(tmp_path: Path) -> Path:
    """An operator's digest that asks for a field only confirmation emails have."""
    folder = tmp_path / "templates"
    (folder / "email").mkdir(parents=True)
    (folder / "email" / "digest.txt").write_text("Confirm here: {{ confirm_url }}\n")
    return folder


async def test_a_template_that_cannot_render_pauses_the_edition_until_fixed(
    make_settings: SettingsFactory, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    broken = make_settings(site={"templates_dir": str(broken_templates(tmp_path))})
    async with open_context(broken) as context:
        await add_articles(context, 5)
        await add_subscribers(context, 4)
        edition = await service.start_edition(context, "daily")
        assert edition.status == "paused"
        assert edition.pause_reason is not None
        assert "digest.txt" in edition.pause_reason and "confirm_url" in edition.pause_reason
        assert f"newsletter editions resume {edition.id}" in edition.pause_reason
        assert await delivery_statuses(context, edition.id) == Counter()
        # `preview` says the same in one line, no traceback.
        env = environment_for(broken, NEWSLETTER_SITE__TEMPLATES_DIR=str(broken.site.templates_dir))
        result = newsletter("preview", "--out", str(tmp_path / "p"), cwd=tmp_path, env=env)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "confirm_url" in result.stderr
    fixed = make_settings()
    async with open_context(fixed) as context:
        # Resumed, it waits for a builder (the workers', here drain's) and is then sent.
        report = await service.resume(context, edition.id)
        assert report.status == "building" and report.pause_reason is None
        await drain(context, editions={edition.id})
        assert (await service.report(context, edition.id)).total == 4
        assert await delivery_statuses(context, edition.id) == Counter(sent=4)
        # Every article went out with it.
        assert all("Story number 4:" in m.data.decode() for m in smtp_server.handler.messages())


async def test_a_send_of_an_unbuildable_edition_exits_1_with_the_reason(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    broken = make_settings(site={"templates_dir": str(broken_templates(tmp_path))})
    async with open_context(broken) as context:
        await add_articles(context, 2)
        await add_subscribers(context, 2)
    env = environment_for(broken, NEWSLETTER_SITE__TEMPLATES_DIR=str(broken.site.templates_dir))
    result = newsletter("send", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "could not be built" in result.stdout and "confirm_url" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


async def test_a_newsletter_no_longer_configured_pauses_its_sending_edition(
    make_settings: SettingsFactory, smtp_server: SmtpServer
) -> None:
    configured = make_settings(newsletters=[DAILY])
    async with open_context(configured) as context:
        await add_articles(context, 3)
        await add_subscribers(context, 6)
        edition = await service.start_edition(context, "daily")
        assert edition.status == "sending"
    renamed = make_settings(newsletters=[{"id": "weekly", "name": "The Weekly"}])
    async with open_context(renamed) as context:
        await drain(context, editions={edition.id})
        async with context.db.session() as session:
            stored = await session.get(Edition, edition.id)
        assert stored is not None and stored.status == "paused"
        assert stored.pause_reason is not None and "daily" in stored.pause_reason
        # Nobody's delivery failed or spent an attempt on it.
        assert await delivery_statuses(context, edition.id) == Counter(queued=6)
        assert smtp_server.handler.count() == 0
    async with open_context(configured) as context:
        await service.resume(context, edition.id)
        await drain(context, editions={edition.id})
        assert await delivery_statuses(context, edition.id) == Counter(sent=6)
        async with context.db.session() as session:
            attempts = (await session.scalars(select(Delivery.attempts))).all()
        assert set(attempts) == {1}
