"""`newsletter --version`, `--help` and every command's start import no more than they need:
building the command tree leaves the database, the web app, rendering and delivery alone, which
each command imports when it runs. Checked by the modules loaded, not by timing them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from newsletter.cli import dkim as dkim_cmd
from newsletter.cli import editions as editions_cmd
from tests.support.process import clean_environment

# Third-party packages that none of these may import, each costing tens of milliseconds or more.
HEAVY = frozenset(
    {
        "aiosmtpd",
        "aiosmtplib",
        "aioimaplib",
        "aiosqlite",
        "alembic",
        "apscheduler",
        "argon2",
        "cryptography",
        "cssutils",
        "dns",
        "email_validator",
        "fastapi",
        "feedparser",
        "httpx",
        "jinja2",
        "mako",
        "nh3",
        "playwright",
        "premailer",
        "prometheus_client",
        "psycopg",
        "requests",
        "sqlalchemy",
        "sse_starlette",
        "starlette",
        "uvicorn",
    }
)
# What the command tree itself may import of the package, besides newsletter.cli's modules.
OWN = frozenset({"newsletter", "newsletter.errors", "newsletter.states"})
# The cli modules that bring a command's work along: imported only when the command runs.
WORK = frozenset({"newsletter.cli.demo_session", "newsletter.cli.progress", "newsletter.cli.running"})

LIST = "import json, sys; print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
# Runs `newsletter ARGS` as the script does (it ends in SystemExit), then lists what it imported.
RUN = f"""
import sys
from newsletter.cli.main import app
sys.argv = ["newsletter", *sys.argv[1:]]
try:
    app()
finally:
    {LIST}
"""


def after_command(*args: str) -> set[str]:
    """The modules loaded by `newsletter ARGS`."""
    return loaded(RUN, *args)


def after_import(*modules: str) -> set[str]:
    return loaded(f"import {', '.join(modules)}\n{LIST}")


def loaded(code: str, *args: str) -> set[str]:
    """The modules a fresh interpreter loaded running `code`, from its last line on stderr."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=clean_environment(COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def check_light(modules: set[str]) -> None:
    heavy = {name.split(".")[0] for name in modules} & HEAVY
    assert not heavy, sorted(heavy)
    own = {name for name in modules if name.split(".")[0] == "newsletter"}
    beyond = {name for name in own - OWN if not name.startswith("newsletter.cli")}
    assert not beyond, sorted(beyond)
    assert not own & WORK, sorted(own & WORK)


def test_importing_the_entry_point_is_light() -> None:
    modules = after_import("newsletter.cli.main")
    check_light(modules)
    assert "pydantic" not in modules and "asyncio" not in modules


def test_version_is_light() -> None:
    modules = after_command("--version")
    check_light(modules)
    assert "pydantic" not in modules


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("send", "--help"),
        ("ingest", "--help"),
        ("worker", "--help"),
        ("admins", "add", "--help"),
    ],
)
def test_help_is_light(args: tuple[str, ...]) -> None:
    # pydantic may come: typer's own option parsing uses it.
    check_light(after_command(*args))


def test_the_service_imports_each_part_only_when_it_runs() -> None:
    """`newsletter worker` goes without the web app and the bounce servers' libraries."""
    modules = after_import("newsletter.cli.main", "newsletter.cli.running")
    parts = {"aioimaplib", "aiosmtpd", "argon2", "fastapi", "sse_starlette", "starlette", "uvicorn"}
    found = {name.split(".")[0] for name in modules} & parts
    assert not found, sorted(found)
    assert not {name for name in modules if name.startswith("newsletter.web")}


def test_copied_constants_match_their_source() -> None:
    """--help shows these without importing the modules that define them."""
    from newsletter.editions.service import LISTABLE
    from newsletter.rendering.dkim_dns import DEFAULT_LIFETIME

    assert editions_cmd.LISTABLE == LISTABLE
    assert dkim_cmd.DEFAULT_LIFETIME == DEFAULT_LIFETIME
