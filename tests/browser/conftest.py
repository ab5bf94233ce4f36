"""The real app under uvicorn, for a real browser."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import uvicorn

from newsletter.config import Settings
from newsletter.web import create_app
from tests.conftest import SettingsFactory
from tests.support.ports import free_port


@pytest.fixture
def served(make_settings: SettingsFactory) -> Iterator[Settings]:
    """The real app under uvicorn, its links pointing at itself."""
    port = free_port()
    settings = make_settings(
        site={"base_url": f"http://127.0.0.1:{port}", "sections": ["World", "Politics", "Business"]}
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield settings
    finally:
        server.should_exit = True
        thread.join(15)
