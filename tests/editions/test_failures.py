"""Why messages failed, as an operator sees it: `editions show ID --failures`, the API's page of
deliveries by status, one log line per permanent failure, an edition waiting on configuration,
and a resume that tries again what no server refused."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path

import httpx
import pytest

from newsletter.context import open_context
from newsletter.delivery.worker import ConfigurationFault
from newsletter.editions import service
from newsletter.editions.sending import drain, worker_for
from newsletter.editions.service import start_edition
from newsletter.errors import InvalidInput
from newsletter.web import create_app
from tests.conftest import ADMIN_TOKEN, SettingsFactory
from tests.support.editions import Scenario
from tests.support.factories import add_articles, add_subscribers
from tests.support.ports import free_port
from tests.support.process import environment_for, newsletter
from tests.support.smtp import FaultyMailbox, Mailbox, SmtpServer

BAD_READERS = {"reader1@readers.example", "reader3@readers.example", "reader5@readers.example"}


def refusing_some(address: str, attempt: int) -> str | None:
    if address == "reader5@readers.example":
        return "552 5.2.2 mailbox full"  # permanent, not a bounce
    return f"550 5.1.1 <{address}>: no such user" if address in BAD_READERS else None


async def test_the_failures_of_an_edition_are_listed_with_their_replies(
    scenario: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="newsletter")
    async with scenario(FaultyMailbox(rcpt=refusing_some), 8, delivery={"pause_failure_rate": 1}) as s:
        await drain(s.context, editions={s.edition.id})
        env = environment_for(s.context.settings)

        def show(*extra: str) -> subprocess.CompletedProcess[str]:
            return newsletter(
                "editions", "show", str(s.edition.id), "--failures", *extra, cwd=tmp_path, env=env
            )

        shown = show("--json")
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["counts"]["failed"] == 3 and report["failures"]["total"] == 3
        rows = {row["email"]: row for row in report["failures"]["deliveries"]}
        assert set(rows) == BAD_READERS
        bounced, full = rows["reader1@readers.example"], rows["reader5@readers.example"]
        assert bounced["reply"] == "550 5.1.1 <reader1@readers.example>: no such user"
        assert (bounced["bounce"], bounced["code"]) == ("hard", 550)
        assert (full["bounce"], full["attempts"]) == (None, 1)
        listed = await service.deliveries(s.context, s.edition.id, status="bounced")
        assert {row.email for row in listed.rows} == BAD_READERS - {"reader5@readers.example"}
        table = show()
        assert "552 5.2.2 mailbox full" in table.stdout and "reader5@readers.example" in table.stdout
        bad = show("--status", "lost")
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "status" in bad.stderr
    # One structured line per permanent failure, without the reader's address.
    failed = [r for r in caplog.records if r.getMessage() == "delivery.failed"]
    assert len(failed) == 3
    for record in failed:
        fields = getattr(record, "event_fields", {})
        assert fields["edition"] == s.edition.id and fields["code"] in (550, 552)
        assert "@readers.example" not in repr(fields)
    assert sum("<address>" in getattr(r, "event_fields", {})["reply"] for r in failed) == 2


async def test_the_api_pages_an_editions_deliveries_by_status(scenario: Scenario) -> None:
    async with scenario(FaultyMailbox(rcpt=refusing_some), 8, delivery={"pause_failure_rate": 1}) as s:
        await drain(s.context, editions={s.edition.id})
        app = create_app(s.context.settings, s.context)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as api:
            url = f"/api/editions/{s.edition.id}/deliveries"
            first = (await api.get(url, params={"status": "failed", "per_page": 2})).json()
            second = (await api.get(url, params={"status": "failed", "per_page": 2, "page": 2})).json()
            sent = (await api.get(url, params={"status": "sent"})).json()
            wrong = await api.get(url, params={"status": "nonsense"})
            missing = await api.get("/api/editions/999999/deliveries")
            anonymous = await api.get(url, headers={"Authorization": ""})
    assert first["total"] == second["total"] == 3 and len(first["deliveries"]) == 2
    assert {row["email"] for row in first["deliveries"] + second["deliveries"]} == BAD_READERS
    assert sent["total"] == 5 and all(row["reply"].startswith("250") for row in sent["deliveries"])
    assert wrong.status_code == 422 and wrong.json()["field"] == "status"
    assert missing.status_code == 404 and anonymous.status_code == 401


async def test_an_edition_waits_on_configuration_until_a_worker_can_send_it(
    make_settings: SettingsFactory,
) -> None:
    with SmtpServer(Mailbox(), auth={"news": "right-password"}) as server:
        smtp = {"port": server.port, "username": "news", "password": "wrong"}
        async with open_context(make_settings(smtp=smtp)) as context:
            await add_articles(context, 2)
            await add_subscribers(context, 6)
            edition = await start_edition(context, "daily")
            with pytest.raises(ConfigurationFault, match="smtp.password"):
                await asyncio.wait_for(worker_for(context, only={edition.id}).run(asyncio.Event()), 60)
            waiting = await service.report(context, edition.id)
            listed = await service.list_reports(context)
        assert waiting.status == "sending" and waiting.counts["queued"] == 6
        assert waiting.waiting_reason is not None and "smtp.password" in waiting.waiting_reason
        assert listed[0].waiting_reason == waiting.waiting_reason
        # Fixed, the next worker clears it and sends the edition.
        fixed = {**smtp, "password": "right-password"}
        async with open_context(make_settings(smtp=fixed)) as context:
            await drain(context, editions={edition.id})
            done = await service.report(context, edition.id)
        assert done.status == "done" and done.waiting_reason is None and done.counts["sent"] == 6
        assert server.handler.count() == 6


async def test_resume_tries_again_what_no_server_refused(make_settings: SettingsFactory) -> None:
    """Messages that failed without any server's verdict (every connection dropped mid message,
    attempt after attempt) are sent again by a resume once the cause is gone, even from an
    edition that is done; a server's refusal stays failed."""
    port = free_port()
    settings = make_settings(smtp={"port": port, "max_attempts": 2}, delivery={"pause_failure_rate": 1})
    dropping = FaultyMailbox(
        drop_during_data=lambda rcpts: rcpts != ["reader1@readers.example"],
        rcpt=lambda address, attempt: "550 5.1.1 unknown" if address == "reader1@readers.example" else None,
    )
    async with open_context(settings) as context:
        await add_articles(context, 2)
        await add_subscribers(context, 5)
        edition = await start_edition(context, "daily")
        with SmtpServer(dropping, port=port):
            await drain(context, editions={edition.id})
        failed = await service.report(context, edition.id)
        assert failed.status == "done" and failed.counts["failed"] == 5
        with SmtpServer(Mailbox(), port=port) as healthy:
            resumed = await service.resume(context, edition.id)
            assert resumed.status == "sending" and resumed.counts["queued"] == 4
            await drain(context, editions={edition.id})
            done = await service.report(context, edition.id)
        assert done.status == "done" and (done.counts["sent"], done.counts["failed"]) == (4, 1)
        assert healthy.handler.count() == 4
        with pytest.raises(InvalidInput, match="nothing to send again"):
            await service.resume(context, edition.id)
