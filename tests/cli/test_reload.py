"""A setup mistake under `serve`: a refused SMTP password stops sending (said once, the web app
carries on, the edition shows it waits on configuration) until the configuration file is fixed
and the service reloaded with SIGHUP."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter.config import Settings
from newsletter.context import AppContext
from tests.support.factories import add_articles, add_subscribers
from tests.support.ports import free_port
from tests.support.process import clean_environment, start
from tests.support.smtp import Mailbox, SmtpServer

pytestmark = pytest.mark.slow


def write_config(path: Path, settings: Settings, *, smtp_port: int, password: str) -> None:
    path.write_text(
        f'[database]\nurl = "{settings.database.url}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nusername = "news"\npassword = "{password}"\n'
        "timeout = 5\n"
        f'[security]\nsecret_key = "{settings.security.secret_key.get_secret_value()}"\n'
        f'admin_token = "{settings.security.admin_token.get_secret_value()}"\n'
        "[delivery]\nidle_poll_seconds = 0.1\nretry_base_seconds = 0.05\nretry_max_seconds = 0.2\n"
        "[scheduler]\ngrace_hours = 0\n"
    )


async def until(http: httpx.AsyncClient, path: str, check: Any, seconds: float = 60) -> Any:
    async with asyncio.timeout(seconds):
        while True:
            try:
                response = await http.get(path)
                if response.status_code == 200 and check(body := response.json()):
                    return body
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def test_a_refused_password_waits_for_the_fix_and_a_reload(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    await add_articles(context, 2)
    await add_subscribers(context, 5)
    port = free_port()
    config = tmp_path / "newsletter.toml"
    with SmtpServer(Mailbox(), auth={"news": "right-password"}) as smtp:
        write_config(config, settings, smtp_port=smtp.port, password="wrong-password")
        env = clean_environment(NEWSLETTER_SERVER__PORT=str(port))
        service = start("serve", "--config", str(config), cwd=tmp_path, env=env)
        headers = {"Authorization": f"Bearer {settings.security.admin_token.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            await until(http, "/healthz", lambda body: True)
            started = (await http.post("/api/editions", json={"newsletter": "daily"})).json()
            waiting = await until(http, f"/api/editions/{started['id']}", lambda e: e["waiting_reason"])
            assert waiting["status"] == "sending" and "smtp.password" in waiting["waiting_reason"]
            assert waiting["counts"]["queued"] == 5 and waiting["counts"]["failed"] == 0
            assert (await http.get("/healthz")).status_code == 200  # the web app carries on
            logins = smtp.handler.connections
            write_config(config, settings, smtp_port=smtp.port, password="right-password")
            service.send_signal(signal.SIGHUP)
            done = await until(http, f"/api/editions/{started['id']}", lambda e: e["status"] == "done")
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0
        output = service.stdout.read() if service.stdout else ""
    assert done["counts"]["sent"] == 5 and done["waiting_reason"] is None
    assert smtp.handler.count() == 5
    # Before the fix: one refused login per connection that tried, not a retry loop.
    assert logins <= 8
    assert output.count("delivery.stopped") == 1 and "config.reloaded" in output
