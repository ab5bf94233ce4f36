"""`newsletter serve`: the web app, scheduler and delivery worker in one process."""

from __future__ import annotations

from newsletter.cli.common import ConfigOption, load, run
from newsletter.config import Settings
from newsletter.context import open_context
from newsletter.service import Part, run_parts, web_part
from newsletter.web import create_app


async def serve_all(settings: Settings) -> None:
    async with open_context(settings) as context:
        parts: list[Part] = []
        if settings.server.web:
            parts.append(web_part(create_app(settings, context), settings))
        await run_parts(parts)


def serve(config: ConfigOption = None) -> None:
    """Run the web app, scheduler and delivery worker in one process."""
    settings = load(config)
    run(serve_all(settings))
