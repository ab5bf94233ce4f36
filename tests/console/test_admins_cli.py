"""`newsletter admins add|list|remove|passwd` as an operator runs them, against the test's database."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from newsletter.cli import common
from newsletter.cli.main import app
from newsletter.config import Settings
from newsletter.console import accounts
from newsletter.console.accounts import Role, authenticate
from newsletter.context import AppContext, open_context
from newsletter.database.models import Admin, AdminSession, utcnow
from tests.support.process import NEWSLETTER, environment_for

PASSWORD = "correct horse battery staple"
OTHER = "another long passphrase"


def admins(settings: Settings, cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`newsletter admins ARGS` in a subprocess, `stdin` as its standard input."""
    return subprocess.run(
        [*NEWSLETTER, "admins", *args],
        cwd=cwd,
        env=environment_for(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def add(
    settings: Settings, cwd: Path, name: str, stdin: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """`newsletter admins add NAME --password-stdin OPTIONS`, `stdin` its standard input."""
    return admins(settings, cwd, "add", name, "--password-stdin", *options, stdin=stdin)


def one_error(result: subprocess.CompletedProcess[str], starting: str) -> None:
    """Exit 2 with one line on stderr beginning `error: STARTING`, nothing on stdout."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.splitlines()[0].startswith(f"error: {starting}"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == "", result.stderr


async def names(context: AppContext) -> list[str]:
    async with context.db.session() as session:
        return list(await session.scalars(select(Admin.name).order_by(Admin.name)))


async def hash_of(context: AppContext, name: str) -> str:
    async with context.db.session() as session:
        stored = await session.scalar(select(Admin.password_hash).where(Admin.name == name))
    assert stored is not None, name
    return stored


async def open_session(context: AppContext, name: str) -> str:
    """A console login of `name`, as the web console would record it; its id."""
    token = secrets.token_hex(32)
    async with context.db.session() as session:
        admin_id = await session.scalar(select(Admin.id).where(Admin.name == name))
        assert admin_id is not None, name
        session.add(AdminSession(id=token, admin_id=admin_id, expires_at=utcnow() + timedelta(hours=8)))
        await session.commit()
    return token


async def session_ids(context: AppContext) -> set[str]:
    async with context.db.session() as session:
        return set(await session.scalars(select(AdminSession.id)))


async def test_add_from_stdin_then_list_never_shows_a_password(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    first = add(settings, tmp_path, "alice", PASSWORD + "\n", "--role", "owner")
    second = add(settings, tmp_path, "bob", OTHER + "\n")
    third = add(settings, tmp_path, "carol@example.org", OTHER, "--role", "viewer", "--json")  # no newline
    table = admins(settings, tmp_path, "list")
    listed = admins(settings, tmp_path, "list", "--json")

    assert first.returncode == 0 and first.stdout == "added alice (owner)\n" and first.stderr == ""
    assert second.returncode == 0 and second.stdout == "added bob (editor)\n", second.stderr
    assert third.returncode == 0, third.stderr
    added = json.loads(third.stdout)
    assert (added["name"], added["role"]) == ("carol@example.org", "viewer")
    assert set(added) == {"name", "role", "created_at", "password_changed_at"}

    assert table.returncode == 0, table.stderr
    [header] = [line for line in table.stdout.splitlines() if "┃" in line]
    rows = [line for line in table.stdout.splitlines() if "│" in line]
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == [
        "name", "role", "created", "password changed",
    ]  # fmt: skip
    assert [[cell.strip() for cell in row.split("│")[1:3]] for row in rows] == [
        ["alice", "owner"], ["bob", "editor"], ["carol@example.org", "viewer"],
    ]  # fmt: skip
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row.split("│")[3].strip()) for row in rows)
    assert listed.returncode == 0, listed.stderr
    assert [(a["name"], a["role"]) for a in json.loads(listed.stdout)] == [
        ("alice", "owner"), ("bob", "editor"), ("carol@example.org", "viewer"),
    ]  # fmt: skip
    assert all(set(a) == set(added) for a in json.loads(listed.stdout))

    said = "".join(r.stdout + r.stderr for r in (first, second, third, table, listed))
    assert PASSWORD not in said and OTHER not in said and "argon2" not in said


async def test_the_hash_is_argon2id_and_verifies(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    added = add(settings, tmp_path, "alice", PASSWORD + "\r\n")
    assert added.returncode == 0, added.stderr
    stored = await hash_of(context, "alice")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    account = await authenticate(context, "alice", PASSWORD)  # the line ending was not kept
    assert account is not None and account.role == Role.OWNER
    assert await authenticate(context, "alice", PASSWORD + "\n") is None
    assert await authenticate(context, "alice", OTHER) is None
    assert await authenticate(context, "bob", PASSWORD) is None


async def test_first_account_is_an_owner(settings: Settings, context: AppContext, tmp_path: Path) -> None:
    viewer = add(settings, tmp_path, "root", PASSWORD, "--role", "viewer")
    one_error(viewer, "role: the first account must be an owner")
    assert await names(context) == []

    first = add(settings, tmp_path, "root", PASSWORD)
    assert first.returncode == 0 and first.stdout == "added root (owner)\n", first.stderr
    assert "first account" in first.stderr and "owner" in first.stderr

    second = add(settings, tmp_path, "helper", PASSWORD)
    assert second.stdout == "added helper (editor)\n" and second.stderr == "", second.stderr
    root, helper = [await authenticate(context, n, PASSWORD) for n in ("root", "helper")]
    assert root is not None and helper is not None
    assert (root.role, helper.role) == (Role.OWNER, Role.EDITOR)


@pytest.mark.parametrize(
    ("args", "stdin", "field"),
    [
        (["add", "alice"], OTHER, "name: an account named 'alice' exists already"),
        (["add", "bob"], "short pass\n", "password: at least 12 characters"),
        (["add", "bob"], "", "password: at least 12 characters"),
        (["add", "Bob!"], OTHER, "name: "),
        (["add", "bob", "--role", "admin"], OTHER, "role: must be one of owner, editor, viewer"),
        (["passwd", "alice"], "short pass\n", "password: at least 12 characters"),
        (["passwd", "nobody"], OTHER, "not found: no account named 'nobody'"),
        (["remove", "nobody", "--yes"], "", "not found: no account named 'nobody'"),
    ],
)
async def test_bad_input_is_one_line_and_changes_nothing(
    settings: Settings, context: AppContext, tmp_path: Path, args: list[str], stdin: str, field: str
) -> None:
    await accounts.add(context, "alice", PASSWORD, Role.OWNER)
    before = await hash_of(context, "alice")
    password_stdin = ["--password-stdin"] if args[0] != "remove" else []
    result = admins(settings, tmp_path, *args, *password_stdin, stdin=stdin)
    one_error(result, field)
    assert "short pass" not in result.stderr and OTHER not in result.stderr
    assert await names(context) == ["alice"]
    assert await hash_of(context, "alice") == before
    assert await authenticate(context, "alice", PASSWORD) is not None


async def test_remove_keeps_the_last_owner_and_ends_sessions(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    await accounts.add(context, "alice", PASSWORD, Role.OWNER)
    await accounts.add(context, "bob", PASSWORD, Role.EDITOR)
    alice_session, bob_session = await open_session(context, "alice"), await open_session(context, "bob")

    one_error(admins(settings, tmp_path, "remove", "alice", "--yes"), "name: 'alice' is the last owner")
    declined = admins(settings, tmp_path, "remove", "bob", stdin="n\n")
    assert declined.returncode == 1 and "Remove the console account bob (editor)?" in declined.stderr
    assert await names(context) == ["alice", "bob"]
    assert await session_ids(context) == {alice_session, bob_session}

    removed = admins(settings, tmp_path, "remove", "bob", "--yes")
    assert removed.returncode == 0 and removed.stdout.startswith("removed bob"), removed.stderr
    assert await names(context) == ["alice"]
    assert await session_ids(context) == {alice_session}

    assert add(settings, tmp_path, "carol", OTHER, "--role", "owner").returncode == 0
    confirmed = admins(settings, tmp_path, "remove", "alice", stdin="y\n")
    assert confirmed.returncode == 0, confirmed.stderr
    # Typer's prompt writes the question's last character (a space) on stdout, the rest on stderr.
    assert confirmed.stdout.strip() == "removed alice; its console sessions were ended"
    assert await names(context) == ["carol"] and await session_ids(context) == set()


async def test_passwd_changes_the_password_and_ends_sessions(
    settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    await accounts.add(context, "alice", PASSWORD, Role.OWNER)
    await accounts.add(context, "bob", PASSWORD, Role.EDITOR)
    alice_session, bob_session = await open_session(context, "alice"), await open_session(context, "bob")
    before = await authenticate(context, "alice", PASSWORD)
    assert before is not None

    changed = admins(settings, tmp_path, "passwd", "alice", "--password-stdin", stdin=OTHER + "\n")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == "password of alice changed; its console sessions were ended\n"
    assert OTHER not in changed.stdout + changed.stderr
    assert await authenticate(context, "alice", PASSWORD) is None
    after = await authenticate(context, "alice", OTHER)
    assert after is not None and after.password_changed_at >= before.password_changed_at
    assert (await hash_of(context, "alice")).startswith("$argon2id$")
    assert await session_ids(context) == {bob_session} and alice_session != bob_session
    assert await authenticate(context, "bob", PASSWORD) is not None  # the others' passwords stay


def test_the_prompt_asks_twice_and_hides_the_password(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # In this process, the command's logging set-up would leave the root logger writing to the
    # runner's stream, closed after it.
    monkeypatch.setattr(common, "configure_logging", lambda config: None)
    typed = f"{OTHER}\n{OTHER}x\n{PASSWORD}\n{PASSWORD}\n"  # a mismatch first, then agreement
    result = CliRunner().invoke(app, ["admins", "add", "alice"], input=typed, env=environment_for(settings))
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output and "added alice (owner)" in result.output
    assert PASSWORD not in result.output and OTHER not in result.output

    async def check() -> tuple[bool, bool, int]:
        async with open_context(settings) as context:
            right = await authenticate(context, "alice", PASSWORD) is not None
            wrong = await authenticate(context, "alice", OTHER) is not None
            async with context.db.session() as session:
                count = await session.scalar(select(func.count()).select_from(Admin))
        return right, wrong, int(count or 0)

    assert asyncio.run(check()) == (True, False, 1)
