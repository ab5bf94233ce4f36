"""`newsletter editions unpublish|publish` as a user runs them, against the test's database."""

from __future__ import annotations

import json
from pathlib import Path

from newsletter.editions.sending import drain
from tests.support.editions import Scenario
from tests.support.process import environment_for, newsletter
from tests.support.smtp import Mailbox


async def test_unpublish_and_publish_again(scenario: Scenario, tmp_path: Path) -> None:
    async with scenario(Mailbox(), 2) as s:
        await drain(s.context, editions={s.edition.id})
        env = environment_for(s.context.settings)
        edition = str(s.edition.id)

        down = newsletter("editions", "unpublish", edition, "--json", cwd=tmp_path, env=env)
        assert down.returncode == 0, down.stderr
        state = json.loads(down.stdout)
        assert (state["edition"], state["published"], state["url"]) == (s.edition.id, False, None)
        assert state["unpublished_at"]

        up = newsletter("editions", "publish", edition, cwd=tmp_path, env=env)
        assert up.returncode == 0, up.stderr
        page = f"/archive/daily/{s.edition.edition_date.isoformat()}"
        assert (
            f"edition {edition} is on the web archive: {s.context.settings.site.base_url}{page}"
            in " ".join(up.stdout.split())
        )

        missing = newsletter("editions", "unpublish", "999999", cwd=tmp_path, env=env)
        assert missing.returncode == 2
        assert missing.stderr.strip().splitlines() == ["error: not found: edition 999999 not found"]
        nonsense = newsletter("editions", "unpublish", "latest", cwd=tmp_path, env=env)
        assert nonsense.returncode == 2 and "Traceback" not in nonsense.stderr
