"""`newsletter serve` as a real process on a free port, for tests that talk plain HTTP to it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.process import clean_environment, spawn

ADMIN_TOKEN = "live-admin-token-0123456789"


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    database_url: str
    process: subprocess.Popen[str]

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def live_server(folder: Path, database_url: str, **settings: str) -> Iterator[LiveServer]:
    """Start `newsletter serve` (web only unless settings say otherwise) and wait for /healthz."""
    port = free_port()
    defaults = {
        "NEWSLETTER_DATABASE__URL": database_url,
        "NEWSLETTER_SERVER__PORT": str(port),
        "NEWSLETTER_SERVER__SCHEDULER": "false",
        "NEWSLETTER_SERVER__WORKER": "false",
        "NEWSLETTER_SECURITY__ADMIN_TOKEN": ADMIN_TOKEN,
        "NEWSLETTER_SECURITY__SECRET_KEY": "live-secret-key-0123456789",
        "NEWSLETTER_LOGGING__LEVEL": "WARNING",
    }
    env = clean_environment(**{**defaults, **settings})
    process = spawn("serve", cwd=folder, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"newsletter serve did not come up: {output[-2000:]}")
            time.sleep(0.1)
        yield LiveServer(base_url, database_url, process)
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
