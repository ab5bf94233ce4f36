"""The operator console over HTTP: logging in and out, sessions, CSRF, roles, lock-out, editions."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from newsletter.console import accounts
from newsletter.console.accounts import Role
from newsletter.console.sessions import COOKIE, LOGIN_COOKIE
from newsletter.context import AppContext
from newsletter.database.models import AdminSession, Edition, utcnow
from newsletter.editions.sending import drain
from newsletter.states import EditionStatus
from newsletter.web import create_app
from tests.conftest import SettingsFactory
from tests.console.helpers import PASSWORD, Client, audit_actions, csrf_of, log_in, session_cookie
from tests.support.factories import add_articles, add_subscribers


async def test_a_page_asks_for_a_login_then_returns_there(browser: Client, context: AppContext) -> None:
    client = browser()
    first = await client.get("/admin/editions")
    assert first.status_code == 303 and first.headers["location"] == "/admin/login?next=/admin/editions"
    wrong = await log_in(client, "olivia", "not the password at all")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    assert COOKIE not in client.cookies
    answer = await log_in(client, "olivia", next="/admin/editions")
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/editions"
    set_cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Path=/admin" in set_cookie
    assert "Secure" not in set_cookie  # localhost: a browser would not send a Secure cookie over http
    page = await client.get("/admin/editions")
    assert page.status_code == 200 and "olivia (owner)" in page.text
    assert (
        page.headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    actions = [a[1] for a in await audit_actions(context)]
    assert actions == ["login.failed", "login"]


async def test_secure_cookies_off_localhost(make_settings: SettingsFactory, context: AppContext) -> None:
    await accounts.add(context, "olivia", PASSWORD, Role.OWNER)
    settings = make_settings(site={"base_url": "https://news.example"})
    app = create_app(settings, context)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://news.example"
    ) as client:
        answer = await log_in(client, "olivia")
    assert answer.status_code == 303
    assert "Secure" in next(h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))


async def test_login_goes_only_to_console_paths(browser: Client) -> None:
    for elsewhere in ("//evil.example/admin", "https://evil.example/", "/admin\\@evil.example", "/archive"):
        answer = await log_in(browser(), "olivia", next=elsewhere)
        assert answer.status_code == 303 and answer.headers["location"] == "/admin", elsewhere


async def test_a_login_form_needs_its_own_cookie(browser: Client, context: AppContext) -> None:
    client = browser()
    form = await client.get("/admin/login")
    client.cookies.delete(LOGIN_COOKIE)
    answer = await client.post(
        "/admin/login", data={"name": "olivia", "password": PASSWORD, "csrf": csrf_of(form)}
    )
    assert answer.status_code == 400 and f"{COOKIE}=" not in answer.headers.get("set-cookie", "")
    forged = await browser().post(
        "/admin/login", data={"name": "olivia", "password": PASSWORD, "csrf": "x" * 64}
    )
    assert forged.status_code == 400
    assert await audit_actions(context) == []


async def test_login_never_keeps_the_session_a_browser_brought(browser: Client, context: AppContext) -> None:
    client = browser()
    form = await client.get("/admin/login")
    data = {"name": "eddie", "password": PASSWORD, "csrf": csrf_of(form)}
    planted = {"Cookie": f"{LOGIN_COOKIE}={client.cookies[LOGIN_COOKIE]}; {COOKIE}=planted-by-someone-else"}
    first = session_cookie(await client.post("/admin/login", data=data, headers=planted))
    assert first and first != "planted-by-someone-else"
    # Logging in again with a live session: a new one, and the old one ends.
    form = await client.get("/admin/login")
    data["csrf"] = csrf_of(form)
    again = {"Cookie": f"{LOGIN_COOKIE}={client.cookies[LOGIN_COOKIE]}; {COOKIE}={first}"}
    second = session_cookie(await client.post("/admin/login", data=data, headers=again))
    assert second and second != first
    assert (await browser().get("/admin", headers={"Cookie": f"{COOKIE}={first}"})).status_code == 303
    assert (await browser().get("/admin", headers={"Cookie": f"{COOKIE}={second}"})).status_code == 200
    async with context.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(AdminSession)) == 1


async def test_logout_needs_the_form_token_and_ends_the_session(browser: Client, context: AppContext) -> None:
    client = browser()
    await log_in(client, "vera")
    cookie = client.cookies[COOKIE]
    refused = await client.post("/admin/logout", data={})
    assert refused.status_code == 403
    page = await client.get("/admin")
    assert page.status_code == 200
    out = await client.post("/admin/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert (await browser().get("/admin", headers={"Cookie": f"{COOKIE}={cookie}"})).status_code == 303
    assert [a[1] for a in await audit_actions(context)] == ["login", "logout"]


async def test_sessions_expire_when_idle_and_in_any_case(browser: Client, context: AppContext) -> None:
    client = browser()
    await log_in(client, "vera")
    assert (await client.get("/admin")).status_code == 200
    async with context.db.session() as session:
        await session.execute(update(AdminSession).values(seen_at=utcnow() - timedelta(minutes=61)))
        await session.commit()
    assert (await client.get("/admin")).status_code == 303
    await log_in(client, "vera")
    async with context.db.session() as session:
        await session.execute(update(AdminSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert (await client.get("/admin")).status_code == 303
    async with context.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(AdminSession)) == 0


async def _edition(
    context: AppContext, edition_for: Callable[..., Awaitable[Edition]], readers: int = 3
) -> int:
    edition = await edition_for(readers)
    return edition.id


async def test_roles_allow_and_refuse_what_they_should(
    browser: Client, context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition_id = await _edition(context, edition_for)
    viewer, editor, owner = browser(), browser(), browser()
    for client, name in ((viewer, "vera"), (editor, "eddie"), (owner, "olivia")):
        assert (await log_in(client, name)).status_code == 303
    for path in ("/admin", "/admin/editions", f"/admin/editions/{edition_id}"):
        for client in (viewer, editor, owner):
            assert (await client.get(path)).status_code == 200, path
    page = await viewer.get(f"/admin/editions/{edition_id}")
    assert f"/admin/editions/{edition_id}/cancel" not in page.text  # no button it may not press
    refused = await viewer.post(f"/admin/editions/{edition_id}/cancel", data={"csrf": csrf_of(page)})
    assert refused.status_code == 403 and "viewer" in refused.text
    assert (await viewer.post("/admin/editions", data={"csrf": csrf_of(page)})).status_code == 403
    for client in (viewer, editor):
        assert (await client.get("/admin/audit")).status_code == 403
    assert await _status(context, edition_id) == EditionStatus.SENDING
    page = await editor.get(f"/admin/editions/{edition_id}")
    paused = await editor.post(f"/admin/editions/{edition_id}/pause", data={"csrf": csrf_of(page)})
    assert paused.status_code == 303 and paused.headers["location"].endswith("?done=pause")
    assert await _status(context, edition_id) == EditionStatus.PAUSED
    shown = await editor.get(paused.headers["location"])
    assert "Paused" in shown.text and "paused by eddie in the console" in shown.text
    again = await editor.post(f"/admin/editions/{edition_id}/pause", data={"csrf": csrf_of(page)})
    assert again.headers["location"].endswith("?refused=pause")
    assert "it cannot pause" in (await editor.get(again.headers["location"])).text
    await editor.post(f"/admin/editions/{edition_id}/cancel", data={"csrf": csrf_of(page)})
    assert await _status(context, edition_id) == EditionStatus.CANCELLED
    trail = await owner.get("/admin/audit")
    assert trail.status_code == 200 and "edition.pause" in trail.text and "edition.cancel" in trail.text
    recorded = await audit_actions(context)
    assert ("eddie", "edition.pause", f"edition {edition_id}") in recorded
    assert ("eddie", "edition.cancel", f"edition {edition_id}") in recorded
    assert not any(actor == "vera" and action.startswith("edition.") for actor, action, _ in recorded)


async def _status(context: AppContext, edition_id: int) -> str | None:
    async with context.db.session() as session:
        return await session.scalar(select(Edition.status).where(Edition.id == edition_id))


async def test_forms_without_this_sessions_token_change_nothing(
    browser: Client, context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition_id = await _edition(context, edition_for)
    mine, theirs = browser(), browser()
    await log_in(mine, "eddie")
    await log_in(theirs, "olivia")
    their_token = csrf_of(await theirs.get("/admin"))
    for data in ({}, {"csrf": ""}, {"csrf": their_token}, {"csrf": "0" * 64}):
        answer = await mine.post(f"/admin/editions/{edition_id}/cancel", data=data)
        assert answer.status_code == 403, data
    assert await _status(context, edition_id) == EditionStatus.SENDING
    assert not [a for a in await audit_actions(context) if a[1].startswith("edition.")]


async def test_failed_logins_lock_the_account_and_the_address(
    app: FastAPI, browser: Client, context: AppContext
) -> None:
    attempts = context.settings.console.login_attempts
    for _ in range(attempts):
        assert (await log_in(browser("198.51.100.1"), "eddie", "wrong password here")).status_code == 401
    # The account is locked from any address, even with its password.
    locked = await log_in(browser("198.51.100.2"), "eddie")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "Too many failed logins" in locked.text and f"{COOKIE}=" not in locked.headers.get(
        "set-cookie", ""
    )
    # One address trying many names is locked too; the same account from elsewhere is not.
    for n in range(attempts):
        await log_in(browser("198.51.100.3"), f"nobody{n}", "wrong password here")
    assert (await log_in(browser("198.51.100.3"), "vera")).status_code == 429
    assert (await log_in(browser("198.51.100.4"), "vera")).status_code == 303
    actions = [a[1] for a in await audit_actions(context)]
    assert actions.count("login.failed") == 2 * attempts and actions.count("login.locked") == 2


async def test_an_unknown_name_answers_as_a_wrong_password(browser: Client) -> None:
    unknown = await log_in(browser(), "nosuchperson", PASSWORD)
    wrong = await log_in(browser(), "vera", "wrong password here")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.replace("nosuchperson", "vera") == wrong.text.replace(
        csrf_of(wrong), csrf_of(unknown)
    )


async def test_send_now_and_watch_the_progress_to_done(browser: Client, context: AppContext) -> None:
    await add_articles(context, 6)
    await add_subscribers(context, 12)
    client = browser()
    await log_in(client, "eddie")
    page = await client.get("/admin/editions")
    started = await client.post("/admin/editions", data={"csrf": csrf_of(page), "newsletter": "daily"})
    assert started.status_code == 303
    edition_id = int(started.headers["location"].rsplit("/", 1)[1])
    watching = asyncio.create_task(client.get(f"/admin/editions/{edition_id}/progress"))
    await drain(context, editions={edition_id})
    stream = await asyncio.wait_for(watching, 30)
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    figures = [json.loads(line[5:]) for line in stream.text.splitlines() if line.startswith("data:")]
    assert figures and figures[-1]["status"] == "done" and figures[-1]["sent"] == 12
    assert figures[-1]["done_share"] == 1.0
    sent = [f["sent"] for f in figures]
    assert sent == sorted(sent)
    assert ("eddie", "edition.send", f"edition {edition_id}") in await audit_actions(context)


async def test_unknown_editions_and_actions_are_404(browser: Client) -> None:
    client = browser()
    await log_in(client, "olivia")
    token = csrf_of(await client.get("/admin"))
    assert (await client.get("/admin/editions/999999")).status_code == 404
    assert (await client.get("/admin/editions/999999/progress")).status_code == 404
    assert (await client.post("/admin/editions/1/explode", data={"csrf": token})).status_code == 404


async def test_a_disabled_console_is_not_there(make_settings: SettingsFactory, context: AppContext) -> None:
    app = create_app(make_settings(console={"enabled": False}), context)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost"
    ) as client:
        assert (await client.get("/admin")).status_code == 404
        assert (await client.get("/admin/login")).status_code == 404


async def test_the_dashboard_shows_what_is_next_what_went_and_who_reads(
    browser: Client, context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition_id = await _edition(context, edition_for, readers=4)
    await drain(context, editions={edition_id})
    client = browser()
    await log_in(client, "vera")
    page = await client.get("/admin")
    assert page.status_code == 200
    text = page.text
    assert "Europe/London" in text  # the next edition, in the newsletter's own time
    assert f'href="/admin/editions/{edition_id}"' in text and "done" in text
    assert "<svg" in text and "Sign-ups per day, last 30 days: 4 in all" in text
    readers = text.split('id="readers-heading"', 1)[1].split("</table>", 1)[0]
    assert '<td>active</td><td class="num">4</td>' in readers
    relays = text.split('id="relays-heading"', 1)[1]
    assert f"127.0.0.1:{context.settings.smtp.port}" in relays
    row = relays.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[0] == "default" and cells[6:9] == ["4", "0", "0"] and cells[9] == "none"


async def test_editions_page_fifty_at_a_time_newest_first(browser: Client, context: AppContext) -> None:
    start = date(2026, 1, 1)
    async with context.db.session() as session:
        session.add_all(
            Edition(
                newsletter_id="daily",
                edition_date=start + timedelta(days=n),
                status=EditionStatus.DONE,
                since_at=utcnow(),
                cutoff_at=utcnow(),
            )
            for n in range(55)
        )
        await session.commit()
        ids = sorted((await session.scalars(select(Edition.id))).all(), reverse=True)
    client = browser()
    await log_in(client, "vera")
    first = await client.get("/admin/editions")
    shown = [int(n) for n in re.findall(r'href="/admin/editions/(\d+)">#', first.text)]
    assert shown == ids[:50]
    assert f'href="/admin/editions?before={ids[49]}"' in first.text
    second = await client.get(f"/admin/editions?before={ids[49]}")
    assert [int(n) for n in re.findall(r'href="/admin/editions/(\d+)">#', second.text)] == ids[50:]
    assert "Older editions" not in second.text
    assert (await client.get("/admin/editions?before=0")).status_code == 422


async def test_console_errors_are_console_pages(browser: Client) -> None:
    client = browser()
    await log_in(client, "vera")
    missing = await client.get("/admin/editions/424242")
    assert missing.status_code == 404 and "Back to the console" in missing.text
    bad = await client.get("/admin/editions/not-a-number")
    assert bad.status_code == 422 and "edition_id:" in bad.text and "Back to the console" in bad.text
    assert bad.headers["content-type"].startswith("text/html")
    api = await client.get("/api/editions/not-a-number")
    assert api.status_code in (401, 422) and api.headers["content-type"].startswith("application/json")
