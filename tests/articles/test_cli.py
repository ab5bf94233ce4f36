"""`newsletter ingest` and `newsletter articles` as a user runs them: subprocesses, real exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.articles import write_fresh_sample_feed
from tests.support.http import FeedServer, Route
from tests.support.process import clean_environment


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = clean_environment(COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def workdir(tmp_path: Path, database_url: str, feed_server: FeedServer) -> Path:
    sample = write_fresh_sample_feed(tmp_path / "sample.xml", datetime.now(UTC))
    missing = feed_server.url("/missing.xml")
    (tmp_path / "newsletter.toml").write_text(
        f'[database]\nurl = "{database_url}"\n\n'
        f'[[feeds]]\nurl = "{sample}"\nname = "London Daily"\n\n'
        f'[[feeds]]\nurl = "{missing}"\nname = "Missing"\nsection = "World"\nallow_private = true\n'
    )
    return tmp_path


def test_ingest_prints_a_table_and_fails_when_a_feed_fails(workdir: Path) -> None:
    result = cli("ingest", cwd=workdir)
    assert result.returncode == 1, result.stderr
    assert "London Daily" in result.stdout and "HTTP 404 Not Found" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "London Daily" in line)
    assert [cell.strip() for cell in row.split("\u2502") if cell.strip()][1:6] == ["51", "0", "0", "0", "ok"]


def test_ingest_one_feed_as_json_twice(workdir: Path) -> None:
    first = cli("ingest", "--feed", "London Daily", "--json", cwd=workdir)
    assert first.returncode == 0, first.stderr
    [report] = json.loads(first.stdout)
    assert (report["name"], report["new"], report["error"]) == ("London Daily", 51, None)
    second = json.loads(cli("ingest", "--feed", str(workdir / "sample.xml"), "--json", cwd=workdir).stdout)
    assert second[0]["not_modified"] is True and second[0]["new"] == 0


def test_ad_hoc_feed_and_bad_feed_option(workdir: Path, feed_server: FeedServer) -> None:
    url = feed_server.route("/adhoc.xml", Route(body=(workdir / "sample.xml").read_bytes()))
    refused = cli("ingest", "--feed", url, "--json", cwd=workdir)
    assert refused.returncode == 1 and "loopback" in json.loads(refused.stdout)[0]["error"]
    assert feed_server.requests_for("/adhoc.xml") == []  # refused before connecting
    result = cli("ingest", "--feed", url, "--allow-private", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["new"] == 51
    bad = cli("ingest", "--feed", "ftp://x.example/feed", cwd=workdir)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --feed:") and bad.stderr.count("\n") == 1


def test_no_feeds_configured_is_bad_usage(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "newsletter.toml").write_text(f'[database]\nurl = "{database_url}"\n')
    result = cli("ingest", cwd=tmp_path)
    assert result.returncode == 2 and "no feeds configured" in result.stderr


def test_articles_list_and_add(workdir: Path) -> None:
    assert cli("ingest", "--feed", "London Daily", cwd=workdir).returncode == 0
    defence = json.loads(cli("articles", "list", "--section", "defence", "--json", cwd=workdir).stdout)
    assert len(defence) >= 3 and {row["section"] for row in defence} == {"Defence"}
    assert defence[0]["title"] == "UK and Japan sign military agreement amid Russia concerns"
    table = cli("articles", "list", "--limit", "2", cwd=workdir)
    assert table.returncode == 0 and "UK and Japan sign military agreement" in table.stdout

    added = cli(
        "articles", "add", "--title", "Hand-made story", "--url", "https://londondaily.example/uk/hand-made",
        "--section", "world", "--published", "2026-03-07T10:00:00Z",
        "--summary", "<b>Bold</b><script>x</script>", "--json", cwd=workdir,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["outcome"] == "new"
    since = json.loads(
        cli("articles", "list", "--since", "2026-03-07", "--section", "World", "--json", cwd=workdir).stdout
    )
    made = next(row for row in since if row["title"] == "Hand-made story")
    assert (made["section"], made["summary"]) == ("World", "<b>Bold</b>")  # a configured section


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["articles", "add", "--title", "T", "--url", "not a url"],
            "error: --url: must be an absolute http(s) URL",
        ),
        (
            ["articles", "add", "--title", "T", "--url", "https://x.example", "--published", "soon"],
            "error: --published:",
        ),
        (
            ["articles", "add", "--title", "T", "--url", "https://x.example", "--image", "data:x"],
            "error: --image:",
        ),
        (
            ["articles", "list", "--since", "yesterday"],
            "error: --since: not an ISO date or time: 'yesterday'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    # Refused before the database is opened: it is never created.
    (tmp_path / "newsletter.toml").write_text('[database]\nurl = "sqlite:///never/created.db"\n')
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert not (tmp_path / "never").exists()
