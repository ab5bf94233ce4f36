"""Running the `newsletter` command as a user would: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from newsletter.config import Settings

NEWSLETTER = [sys.executable, "-m", "newsletter"]


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without NEWSLETTER_* settings, and with bytecode caching allowed (each
    `newsletter` process would otherwise compile every module again)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def environment_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a subprocess use the test's database and SMTP server."""
    env = clean_environment()
    env.update(
        {
            "NEWSLETTER_DATABASE__URL": settings.database.url,
            "NEWSLETTER_SMTP__HOST": settings.smtp.host,
            "NEWSLETTER_SMTP__PORT": str(settings.smtp.port),
            "NEWSLETTER_SMTP__TIMEOUT": str(settings.smtp.timeout),
            "NEWSLETTER_SECURITY__SECRET_KEY": settings.security.secret_key.get_secret_value(),
            "NEWSLETTER_SECURITY__ADMIN_TOKEN": settings.security.admin_token.get_secret_value(),
            "NEWSLETTER_DELIVERY__RETRY_BASE_SECONDS": str(settings.delivery.retry_base_seconds),
            "NEWSLETTER_DELIVERY__RETRY_MAX_SECONDS": str(settings.delivery.retry_max_seconds),
            "NEWSLETTER_DELIVERY__IDLE_POLL_SECONDS": str(settings.delivery.idle_poll_seconds),
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


def newsletter(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEWSLETTER, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def spawn(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`newsletter ARGS` in the background, its output in `stdout`; the caller ends it and
    closes its pipe (`with spawn(…) as process:`)."""
    return subprocess.Popen(
        [*NEWSLETTER, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def start(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`spawn` for one test: ended and closed after it by `reap_children` (conftest), whatever
    the test did with it."""
    process = spawn(*args, cwd=cwd, env=env)
    _children.append(process)
    return process


_children: list[subprocess.Popen[str]] = []


def reap_children() -> None:
    """Kill what a test left running and close the pipes of every process it started."""
    while _children:
        process = _children.pop()
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
