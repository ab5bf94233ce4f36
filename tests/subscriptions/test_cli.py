"""`newsletter subscribers ...` as an operator runs it: a real process, exit statuses, output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.process import clean_environment

NEWSLETTER = [sys.executable, "-m", "newsletter"]


Cli = Callable[..., subprocess.CompletedProcess[str]]


def make_cli(database_url: str, folder: Path) -> Cli:
    env = clean_environment(NEWSLETTER_DATABASE__URL=database_url)
    (folder / "newsletter.toml").write_text('[site]\nsections = ["World", "Politics"]\n')

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*NEWSLETTER, "subscribers", *args]
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    """On each backend."""
    return make_cli(database_url, tmp_path)


@pytest.fixture
def cli_sqlite(tmp_path: Path) -> Cli:
    """For input refused before any write: one backend is enough."""
    return make_cli(f"sqlite:///{tmp_path}/cli.db", tmp_path)


def test_add_list_export_remove(cli: Cli, tmp_path: Path) -> None:
    added = cli("add", "Ann@Example.com", "--confirmed", "--section", "World", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"email": "Ann@Example.com", "result": "added"}
    assert cli("add", "bob@example.com").returncode == 0
    listed = cli("list", "--json")
    items = json.loads(listed.stdout)
    assert [(i["email"], i["status"], i["newsletters"]) for i in items] == [
        ("Ann@example.com", "active", {"daily": ["World"]}),
        ("bob@example.com", "pending", {"daily": []}),
    ]
    assert len(json.loads(cli("list", "--status", "active", "--json").stdout)) == 1
    table = cli("list")
    assert "Ann@example.com" in table.stdout and "2 subscriber(s)" in table.stdout
    exported = cli("export", "out.csv", "--json")
    assert json.loads(exported.stdout) == {"file": "out.csv", "subscribers": 2}
    assert (tmp_path / "out.csv").read_text().startswith("email,status,newsletters,sections")
    removed = cli("remove", "ann@example.com")
    assert removed.returncode == 0 and "erased" in removed.stdout
    again = cli("remove", "ann@example.com")
    assert again.returncode == 2
    assert again.stderr.strip() == "error: not found: no subscriber has that address"
    refused = cli("add", "ann@example.com", "--confirmed")
    assert refused.returncode == 2 and "refused: erased at the reader's request" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "not-an-address"), "email: not a valid email address"),
        (("add", "x@example.com", "--section", "Sport"), "sections[0]: unknown section 'Sport'"),
        (("add", "x@example.com", "--newsletter", "monthly"), "newsletters[0]: unknown newsletter 'monthly'"),
        (("list", "--status", "happy"), "--status: must be one of"),
        (("import", "missing.csv"), "missing.csv: cannot read"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli_sqlite: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli_sqlite(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_import_reports_lines_and_is_all_or_nothing(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        "email,sections\nok@example.com,World\nbad-address,\nok2@example.com,Sport\n"
    )
    refused = cli("import", "in.csv", "--json")
    assert refused.returncode == 2
    report = json.loads(refused.stdout)
    assert (report["imported"], report["added"], report["invalid"]) == (False, 0, 2)
    assert [(p["line"], p["field"]) for p in report["problems"]] == [(3, "email"), (4, "sections[0]")]
    assert "in.csv: 2 invalid row(s), nothing imported (line 3: email:" in refused.stderr
    assert json.loads(cli("list", "--json").stdout) == []
    skipped = cli("import", "in.csv", "--skip-invalid", "--confirmed")
    assert skipped.returncode == 0, skipped.stderr
    assert "added 1, updated 0, invalid 2, suppressed 0" in skipped.stdout
    assert [i["status"] for i in json.loads(cli("list", "--json").stdout)] == ["active"]
    (tmp_path / "latin.csv").write_bytes("email\nfran\xe7ois@example.com\n".encode("latin-1"))
    encoding = cli("import", "latin.csv")
    assert encoding.returncode == 2
    assert "latin.csv line 2: not UTF-8 text" in encoding.stderr
