"""An operator's page template that cannot be rendered: a plain error page, and the log names
the route, never the path (a path may carry a reader's token)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from newsletter.context import open_context
from newsletter.personal.links import Links
from newsletter.web import create_app
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import owner
from tests.web.test_pages_links import active, path


async def test_a_broken_page_template_answers_500_and_logs_no_token(
    make_settings: SettingsFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "templates" / "web").mkdir(parents=True)
    (tmp_path / "templates" / "web" / "unsubscribe.html").write_text("{% if %}broken")
    settings = make_settings(site={"templates_dir": str(tmp_path / "templates")})
    caplog.set_level(logging.ERROR, logger="newsletter")
    async with open_context(settings) as context:
        transport = httpx.ASGITransport(app=create_app(settings, context), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            reader = await active(http, context, settings, "reader@example.com")
            link = path(Links(settings).unsubscribe(await owner(context, reader), "daily"), settings)
            response = await http.get(link)
    assert response.status_code == 500 and "broken" not in response.text
    logged = [record for record in caplog.records if record.getMessage() == "web.unhandled_error"]
    assert logged, [record.getMessage() for record in caplog.records]
    token = link.rsplit("/", 1)[1]
    assert token not in caplog.text
    assert "/unsubscribe/{token}" in str(logged[0].__dict__)
