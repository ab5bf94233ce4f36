"""Every command runs on uvloop's event loop where it is installed, and on asyncio's own where
it is not: the same result either way."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from newsletter.cli.common import run


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_a_command_runs_on_uvloop() -> None:
    assert run(_loop_module()) == "uvloop"


async def test_the_suite_runs_on_the_same_loop_as_the_commands() -> None:
    assert type(asyncio.get_running_loop()).__module__ == "uvloop"


def test_without_uvloop_a_command_runs_on_asyncios_loop() -> None:
    script = (
        "import sys; sys.modules['uvloop'] = None\n"  # as if it were not installed
        "import asyncio\n"
        "from newsletter.cli.common import run\n"
        "async def main():\n"
        "    await asyncio.sleep(0)\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "print(run(main()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "asyncio.unix_events"
