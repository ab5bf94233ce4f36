"""`newsletter demo`, the README's first command, end to end in an empty folder."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import signal
import stat
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.process import NEWSLETTER, clean_environment, newsletter, start


def test_demo_sends_a_digest_to_the_outbox_within_a_minute(tmp_path: Path) -> None:
    started = time.monotonic()
    result = newsletter("demo", cwd=tmp_path, env=clean_environment(), timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 60
    outbox = tmp_path / "var" / "outbox"
    emails = sorted(outbox.glob("*.eml"))
    assert len(emails) == 6
    for path in emails:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    digest = (outbox / "digest.html").read_text()
    assert "London Daily" in digest and "UK and Japan sign military agreement" in digest
    assert "var/outbox" in result.stdout and "digest.html" in result.stdout
    assert "var/demo/newsletter.toml" in result.stdout
    # The digest page shows its pictures offline; the emails point at the demo's publisher.
    pictures = re.findall(r'<img[^>]+src="([^"]+)"', digest)
    assert pictures
    for source in pictures:
        assert not source.startswith(("http:", "https:")), source
        assert (outbox / source).read_bytes()[:3] == b"\xff\xd8\xff", source
    mailed = (sorted(outbox.glob("*ada@readers.example.eml"))[0]).read_text()
    assert "londondaily.example/images" not in mailed


def test_the_demo_writes_its_configuration_commands_here_use_it_and_it_starts_afresh(tmp_path: Path) -> None:
    assert newsletter("demo", cwd=tmp_path, env=clean_environment(), timeout=60).returncode == 0
    written = tmp_path / "var" / "demo" / "newsletter.toml"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    config = tomllib.loads(written.read_text())
    token = config["security"]["admin_token"]
    assert token != "change-me" and len(token) > 20
    assert Path(config["database"]["url"].removeprefix("sqlite:///")) == tmp_path / "var/demo/newsletter.db"
    listed = newsletter("editions", "list", "--json", cwd=tmp_path, env=clean_environment())
    assert listed.returncode == 0, listed.stderr
    assert [edition["status"] for edition in json.loads(listed.stdout)] == ["done"]
    assert "note: using the demo's configuration var/demo/newsletter.toml" in listed.stderr
    again = newsletter("demo", "--json", cwd=tmp_path, env=clean_environment(), timeout=60)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)  # afresh: the same six messages, not twelve
    assert report["sent"] == 6 and report["messages_in_outbox"] == 6 and report["articles"] > 30
    assert len(list((tmp_path / "var" / "outbox").glob("*.eml"))) == 6
    assert "note:" not in again.stderr  # the demo starts from built-in defaults, not its last run
    assert tomllib.loads(written.read_text())["security"]["admin_token"] != token
    (tmp_path / "newsletter.toml").write_text('[site]\nname = "Own"\n')
    own = newsletter("config", "check", cwd=tmp_path, env=clean_environment())
    assert own.returncode == 0, own.stderr
    assert "demo's configuration" not in own.stderr and "Own" in own.stdout  # the folder's own wins


def test_a_command_that_makes_a_new_empty_database_says_so(tmp_path: Path) -> None:
    dry = newsletter("send", "--dry-run", cwd=tmp_path, env=clean_environment())
    assert dry.returncode == 0, dry.stderr
    assert (
        "created a new, empty one" in dry.stderr and "database.url sqlite:///var/newsletter.db" in dry.stderr
    )
    second = newsletter("send", "--dry-run", cwd=tmp_path, env=clean_environment())
    assert "created" not in second.stderr


@pytest.mark.slow
def test_demo_serve_takes_a_signup_and_mails_the_confirmation(tmp_path: Path) -> None:
    port = free_port()
    process = start("demo", "--serve", cwd=tmp_path, env=clean_environment(NEWSLETTER_SERVER__PORT=str(port)))
    outbox = tmp_path / "var" / "outbox"
    try:

        async def scenario() -> Path:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                async with asyncio.timeout(60):
                    while True:
                        try:
                            if (await http.get("/healthz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            assert process.poll() is None, process.stdout.read() if process.stdout else ""
                            await asyncio.sleep(0.2)
                    page = await http.get("/")
                    assert page.status_code == 200 and "London Daily" in page.text
                    signup = await http.post("/subscribe", json={"email": "newcomer@readers.example"})
                    assert signup.status_code == 202
                    while not list(outbox.glob("*newcomer@readers.example.eml")):
                        await asyncio.sleep(0.1)
            return next(outbox.glob("*newcomer@readers.example.eml"))

        confirmation = asyncio.run(scenario())
        message = email.message_from_bytes(confirmation.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))
        assert body is not None and f"http://127.0.0.1:{port}/confirm/" in body.get_content()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    assert NEWSLETTER
