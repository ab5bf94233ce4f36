"""The CLI as a user runs it: a real subprocess, real exit statuses and output."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.process import clean_environment, start

NEWSLETTER = [sys.executable, "-m", "newsletter"]


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = clean_environment(**(env or {}))
    return subprocess.run(
        [*NEWSLETTER, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def test_help_and_version(tmp_path: Path) -> None:
    assert "serve" in cli("--help", cwd=tmp_path).stdout
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("newsletter ")


def test_bad_config_value_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[smtp]\nport = "twenty-five"\n')
    result = cli("config", "check", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "smtp.port" in lines[0] and "bad.toml" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = cli("db", "upgrade", "--config", "absent.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "absent.toml" in result.stderr


def test_unreachable_database_exits_2(tmp_path: Path) -> None:
    env = {"NEWSLETTER_DATABASE__URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = cli("db", "upgrade", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "database unreachable" in result.stderr


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "newsletter.toml").write_text(
        '[smtp]\npassword = "hunter2"\n[security]\nadmin_token = "very-secret-token-value"\n'
    )
    result = cli("config", "check", cwd=tmp_path)
    assert result.returncode == 0
    assert "hunter2" not in result.stdout and "very-secret-token-value" not in result.stdout
    assert "****" in result.stdout
    as_json = cli("config", "check", "--json", cwd=tmp_path)
    assert '"password": "****"' in as_json.stdout


def test_db_upgrade_twice_on_default_sqlite(tmp_path: Path) -> None:
    first = cli("db", "upgrade", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "upgraded" in first.stdout
    assert (tmp_path / "var" / "newsletter.db").is_file()
    second = cli("db", "upgrade", cwd=tmp_path)
    assert second.returncode == 0
    assert "already" in second.stdout


def test_serve_with_no_config_answers_healthz(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "NEWSLETTER_SERVER__PORT": str(port),
        "NEWSLETTER_SERVER__SCHEDULER": "false",
        "NEWSLETTER_SERVER__WORKER": "false",
    }
    full_env = clean_environment(**env)
    process = start("serve", cwd=tmp_path, env=full_env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"serve did not come up: {process.stdout.read() if process.stdout else ''!r}")
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["database"] == "ok"
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_serve_on_every_interface_with_default_secrets_refuses_to_start(tmp_path: Path) -> None:
    """Before, `server.host = "0.0.0.0"` with a localhost base URL started, and the admin API
    answered `Bearer change-me`."""
    (tmp_path / "newsletter.toml").write_text(
        f'[server]\nhost = "0.0.0.0"\n[database]\nurl = "sqlite:///{tmp_path}/x.db"\n'
    )
    result = cli("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "security.secret_key" in result.stderr and "listening on 0.0.0.0" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_config_check_warns_of_dangerous_settings(tmp_path: Path) -> None:
    (tmp_path / "newsletter.toml").write_text('[server]\nforwarded_allow_ips = "*"\n')
    result = cli("config", "check", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.startswith("warning: server.forwarded_allow_ips:")
    assert "configuration OK" in result.stdout
