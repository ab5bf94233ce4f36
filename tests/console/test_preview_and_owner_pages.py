"""The console's preview and test send, accounts and settings pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from newsletter.console import accounts
from newsletter.context import AppContext
from newsletter.database.models import Admin, AdminSession, Edition
from newsletter.editions.builder import build_edition
from newsletter.rendering import DigestRenderer
from tests.conftest import SECRET_KEY
from tests.console.helpers import PASSWORD, Client, audit_actions, csrf_of, log_in
from tests.support.smtp import SmtpServer

EditionFor = Callable[..., Awaitable[Edition]]


async def _built(context: AppContext, edition_for: EditionFor) -> int:
    edition = await edition_for(3)
    await build_edition(context, edition.id, DigestRenderer(context.settings))
    return edition.id


async def test_preview_shows_each_variant_framed_and_its_text(
    browser: Client, context: AppContext, edition_for: EditionFor
) -> None:
    edition_id = await _built(context, edition_for)
    viewer = browser()
    await log_in(viewer, "vera")
    page = await viewer.get(f"/admin/editions/{edition_id}/preview")
    assert page.status_code == 200
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    frames = [src for src in page.text.split('src="')[1:] if ".html" in src.split('"', 1)[0]]
    assert len(frames) == 2  # desktop and phone, one variant
    assert 'width="620"' in page.text and 'width="375"' in page.text
    assert "Text part" in page.text and "/test" not in page.text  # a viewer sees no test send
    src = frames[0].split('"', 1)[0]
    email = await viewer.get(src)
    assert email.status_code == 200 and email.headers["content-security-policy"].startswith("sandbox;")
    assert email.headers["x-frame-options"] == "SAMEORIGIN"
    assert "reader@example.com" in email.text or "/unsubscribe/" in email.text
    assert "\x00" not in email.text and "{{" not in email.text  # the personal fields are filled
    assert (await viewer.get(f"/admin/editions/{edition_id}/variants/999999.html")).status_code == 404


async def test_a_test_copy_reaches_the_address(
    browser: Client, context: AppContext, edition_for: EditionFor, smtp_server: SmtpServer
) -> None:
    edition_id = await _built(context, edition_for)
    editor = browser()
    await log_in(editor, "eddie")
    page = await editor.get(f"/admin/editions/{edition_id}/preview")
    action = page.text.split('action="', 2)[1].split('"', 1)[0]
    while not action.endswith("/test"):
        action = page.text.split(action, 1)[1].split('action="', 1)[1].split('"', 1)[0]
    before = smtp_server.handler.count()
    bad = await editor.post(action, data={"csrf": csrf_of(page), "email": "not an address"})
    assert bad.status_code == 422 and "email" in bad.text
    sent = await editor.post(action, data={"csrf": csrf_of(page), "email": "editor@example.net"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("?done=test")
    received = smtp_server.handler.messages()[before:]
    assert [m.rcpt_tos for m in received] == [["editor@example.net"]]
    assert b"Subject:" in received[0].data
    refused = await browser_post_as_viewer(browser, action)
    assert refused == 403
    assert smtp_server.handler.count() == before + 1
    assert ("eddie", "edition.test_send", f"edition {edition_id}") in await audit_actions(context)


async def browser_post_as_viewer(browser: Client, action: str) -> int:
    viewer = browser()
    await log_in(viewer, "vera")
    token = csrf_of(await viewer.get("/admin"))
    return (await viewer.post(action, data={"csrf": token, "email": "viewer@example.net"})).status_code


async def test_owners_manage_accounts(browser: Client, context: AppContext) -> None:
    owner, editor = browser(), browser()
    await log_in(owner, "olivia")
    await log_in(editor, "eddie")
    assert (await editor.get("/admin/accounts")).status_code == 403
    page = await owner.get("/admin/accounts")
    assert page.status_code == 200 and "vera" in page.text and "argon2" not in page.text
    token = csrf_of(page)
    mismatch = {
        "csrf": token,
        "name": "newbie",
        "role": "viewer",
        "password": PASSWORD,
        "password_again": "x" * 12,
    }
    assert (await owner.post("/admin/accounts", data=mismatch)).status_code == 422
    short = {**mismatch, "password": "short", "password_again": "short"}
    answer = await owner.post("/admin/accounts", data=short)
    assert answer.status_code == 422 and "password: at least 12" in answer.text
    assert (
        await editor.post("/admin/accounts", data={**mismatch, "csrf": csrf_of(await editor.get("/admin"))})
    ).status_code == 403
    good = {**mismatch, "password_again": PASSWORD}
    assert (await owner.post("/admin/accounts", data={**good, "csrf": "forged"})).status_code == 403
    assert (await owner.post("/admin/accounts", data=good)).status_code == 303
    assert [a.name for a in await accounts.listing(context)] == ["eddie", "newbie", "olivia", "vera"]
    # A new password ends the account's sessions.
    newbie = browser()
    assert (await log_in(newbie, "newbie")).status_code == 303
    reset = {"csrf": token, "password": "another long password", "password_again": "another long password"}
    assert (await owner.post("/admin/accounts/newbie/password", data=reset)).status_code == 303
    assert (await newbie.get("/admin")).status_code == 303
    assert (await log_in(browser(), "newbie", "another long password")).status_code == 303
    # Removal needs the name typed; the last owner stays.
    assert (
        await owner.post("/admin/accounts/newbie/remove", data={"csrf": token, "confirm": "no"})
    ).status_code == 422
    assert (
        await owner.post("/admin/accounts/newbie/remove", data={"csrf": token, "confirm": "newbie"})
    ).status_code == 303
    last = await owner.post("/admin/accounts/olivia/remove", data={"csrf": token, "confirm": "olivia"})
    assert last.status_code == 422 and "last owner" in last.text
    async with context.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Admin)) == 3
        assert (
            await session.scalar(select(func.count()).select_from(AdminSession)) == 2
        )  # newbie's went with it
    actions = [(a, t) for _, a, t in await audit_actions(context) if a.startswith("account.")]
    assert actions == [
        ("account.add", "newbie"),
        ("account.password", "newbie"),
        ("account.remove", "newbie"),
    ]


async def test_settings_are_shown_to_owners_with_secrets_masked(browser: Client) -> None:
    owner, viewer = browser(), browser()
    await log_in(owner, "olivia")
    await log_in(viewer, "vera")
    assert (await viewer.get("/admin/settings")).status_code == 403
    page = await owner.get("/admin/settings")
    assert page.status_code == 200 and "[database]" in page.text and "[console]" in page.text
    assert SECRET_KEY not in page.text


@pytest.mark.parametrize("path", ["/admin/accounts", "/admin/settings", "/admin/audit"])
async def test_owner_pages_need_a_login(browser: Client, path: str) -> None:
    answer = await browser().get(path)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login?next=")
