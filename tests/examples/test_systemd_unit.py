"""examples/production/newsletter.service: a unit systemd accepts, running a command line the
real CLI takes."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.cli.common import EXIT_USAGE
from tests.examples.production import UNIT
from tests.support.process import clean_environment, newsletter

INSTALLED_COMMAND = "/opt/newsletter/.venv/bin/newsletter"


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"))
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    unit.read_string(path.read_text(encoding="utf-8"))
    return unit


def test_the_service_runs_serve_as_its_own_user_with_secrets_from_the_env_file() -> None:
    service = read_unit(UNIT)["Service"]
    assert service["User"] == "newsletter"
    assert service["WorkingDirectory"] == "/var/lib/newsletter"
    assert service["EnvironmentFile"] == "/etc/newsletter/env"
    assert shlex.split(service["ExecStart"]) == [
        INSTALLED_COMMAND,
        "serve",
        "--config",
        "/etc/newsletter/newsletter.toml",
    ]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == str(EXIT_USAGE)  # a bad configuration: no loop
    assert service["KillSignal"] == "SIGTERM"


def test_the_service_is_hardened() -> None:
    service = read_unit(UNIT)["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    # The one place it may write is its state directory, which is also where it runs.
    assert service["ReadWritePaths"] == f"/var/lib/{service['StateDirectory']}" == service["WorkingDirectory"]


def test_the_command_line_is_one_the_cli_takes(tmp_path: Path) -> None:
    arguments = shlex.split(read_unit(UNIT)["Service"]["ExecStart"])[1:]
    env = clean_environment(COLUMNS="200")
    helped = newsletter(arguments[0], "--help", cwd=tmp_path, env=env)
    assert helped.returncode == 0, helped.stderr
    for flag in arguments[1:]:
        if flag.startswith("-"):
            assert flag in helped.stdout
    assert "SIGHUP" in helped.stdout  # what ExecReload sends
    # --config names the file it reads: a missing one is said, with the exit status
    # RestartPreventExitStatus stops on.
    missing = tmp_path / "newsletter.toml"
    ran = newsletter(*arguments[:-1], str(missing), cwd=tmp_path, env=env)
    assert ran.returncode == EXIT_USAGE
    assert f"config file not found: {missing}" in ran.stderr


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (Debian: sudo apt-get install systemd): unit not verified",
)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """With ExecStart pointed at this checkout's `newsletter` (verify wants it executable)."""
    here = Path(sys.executable).parent / "newsletter"
    assert here.is_file(), f"no {here}: install the project in its venv (make test does)"
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_COMMAND in text
    unit = tmp_path / "newsletter.service"
    unit.write_text(text.replace(INSTALLED_COMMAND, str(here)), encoding="utf-8")
    verified = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    # Unknown or misspelt keys are only warned about, with the file's name.
    assert unit.name not in verified.stderr, verified.stderr
