"""One reviewed rendering of a digest, kept so that layout changes are deliberate.

After an intended change: UPDATE_SNAPSHOTS=1 pytest tests/rendering/test_snapshot.py, then
review the diff of tests/rendering/snapshots/ (and look at the page in a browser)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsletter.rendering import RenderedEmail
from newsletter.rendering.placeholders import DIGEST_FIELDS

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize(("name", "attribute"), [("digest.html", "html"), ("digest.txt", "text")])
def test_rendered_digest_matches_the_reviewed_snapshot(
    rendered: RenderedEmail, name: str, attribute: str
) -> None:
    # Each rendering's tokens carry a random nonce: the snapshot spells them without it.
    stable = {field: f"__NL_{field}__" for field in DIGEST_FIELDS}
    produced = rendered.filled_html(stable) if attribute == "html" else rendered.filled_text(stable)
    snapshot = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(produced, encoding="utf-8")
    assert snapshot.is_file(), f"no snapshot yet: run with UPDATE_SNAPSHOTS=1 and review {snapshot}"
    expected = snapshot.read_text(encoding="utf-8")
    assert produced == expected, (
        f"{name} changed: if intended, run with UPDATE_SNAPSHOTS=1 and review the diff"
    )
