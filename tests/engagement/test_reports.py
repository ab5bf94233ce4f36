"""`newsletter stats` as a user runs it, the SVG chart, the signup form's notice, retention."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

from newsletter.database.models import Click, utcnow
from newsletter.engagement.retention import delete_old_clicks
from newsletter.web import create_app
from tests.engagement.helpers import READER, TrackedScenario, sent, story_links, web
from tests.support.process import environment_for, newsletter


async def test_stats_command_tables_json_and_chart(scenario: TrackedScenario, tmp_path: Path) -> None:
    async with sent(scenario, "aggregate") as s:
        [links, _] = story_links(s)
        async with web(s.context) as client:
            for link in (links[0], links[0], links[1]):
                await client.get(urlsplit(link).path, headers=READER)
        env = environment_for(s.context.settings)
        chart = tmp_path / "clicks.svg"
        shown = newsletter(
            "stats", "--edition", str(s.edition.id), "--plot", str(chart), cwd=tmp_path, env=env
        )
        as_json = newsletter("stats", "--edition", str(s.edition.id), "--json", cwd=tmp_path, env=env)
        top = newsletter("stats", "--since", "2000-01-01", "--json", cwd=tmp_path, env=env)
        bad = newsletter("stats", "--since", "yesterday", cwd=tmp_path, env=env)
        lonely_plot = newsletter("stats", "--plot", str(tmp_path / "x.svg"), cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "2 clicks by readers over 2 delivered (rate 100.0%)" in " ".join(shown.stdout.split())
    assert "counted apart: repeat 1" in shown.stdout
    data = json.loads(as_json.stdout)
    assert [a["clicks"] for a in data["articles"]] == [1, 1] and data["filtered"] == {"repeat": 1}
    assert [a["clicks"] for a in json.loads(top.stdout)["articles"]] == [1, 1]
    svg = ElementTree.parse(chart).getroot()
    bars = svg.findall("{http://www.w3.org/2000/svg}rect")[1:]
    assert len(bars) == 2 and "Clicks per article" in (
        svg.findtext("{http://www.w3.org/2000/svg}title") or ""
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
    assert lonely_plot.returncode == 2 and "--edition" in lonely_plot.stderr


async def test_signup_form_says_when_clicks_are_recorded_per_reader(scenario: TrackedScenario) -> None:
    for mode, told in (("per_reader", True), ("aggregate", False)):
        async with sent(scenario, mode) as s:
            transport = httpx.ASGITransport(app=create_app(s.context.settings, s.context))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                page = (await client.get("/")).text
        assert ("records which of its links you click" in page) is told, mode


async def test_clicks_past_their_retention_are_deleted(scenario: TrackedScenario) -> None:
    async with sent(scenario, "aggregate") as s:
        [links, _] = story_links(s)
        async with web(s.context) as client:
            await client.get(urlsplit(links[0]).path, headers=READER)
        days = s.context.settings.tracking.retention_days
        assert await delete_old_clicks(s.context, now=utcnow() + timedelta(days=days - 1)) == 0
        assert await delete_old_clicks(s.context, now=utcnow() + timedelta(days=days + 1)) == 1
        async with s.context.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Click)) == 0
