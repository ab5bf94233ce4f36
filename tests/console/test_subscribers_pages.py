"""The console's subscribers pages: search, filter and page; one reader's record; add, erase,
CSV import and export (owner only, CSRF-checked, audited)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from newsletter.console import accounts
from newsletter.console import subscribers as queries
from newsletter.console.accounts import Role
from newsletter.context import AppContext
from newsletter.database.models import AuditEvent, BounceEvent, Edition, Event, Subscriber
from newsletter.editions.sending import drain
from newsletter.subscriptions import audit
from newsletter.subscriptions.audit import Actor
from tests.console.helpers import PASSWORD, Client, audit_actions, csrf_of, log_in
from tests.support.factories import add_subscribers

ROW = re.compile(r'<a href="/admin/subscribers/(\d+)">([^<]+)</a>')


async def _logged_in(browser: Client, name: str) -> httpx.AsyncClient:
    client = browser()
    assert (await log_in(client, name)).status_code == 303
    return client


def _listed(page: httpx.Response) -> list[tuple[int, str]]:
    """(id, address) of each row of a subscribers page, in order."""
    assert page.status_code == 200, page.text
    return [(int(i), email) for i, email in ROW.findall(page.text)]


async def _subscriber(context: AppContext, email: str) -> Subscriber | None:
    async with context.db.session() as session:
        return await session.scalar(select(Subscriber).where(Subscriber.email_key == email.lower()))


async def _count(context: AppContext) -> int:
    async with context.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Subscriber)) or 0)


async def _audit_details(context: AppContext, action: str) -> list[str]:
    query = select(AuditEvent.detail).where(AuditEvent.action == action).order_by(AuditEvent.id)
    async with context.db.session() as session:
        return list((await session.scalars(query)).all())


def test_prefix_bounds_hold_exactly_the_strings_that_start_with_it() -> None:
    assert queries.prefix_bounds("ab") == ("ab", "ac")
    assert queries.prefix_bounds("a\U0010ffff") == ("a\U0010ffff", "b")
    assert queries.prefix_bounds("\U0010ffff") == ("\U0010ffff", None)
    low, high = queries.prefix_bounds("jo")
    for inside in ("jo", "jo.smith@x.example", "jo\U0010ffff"):
        assert high is not None and low <= inside < high
    for outside in ("j", "jn\U0010ffff", "jp"):
        assert high is not None and not (low <= outside < high)


async def test_search_by_prefix_pages_newest_first(browser: Client, context: AppContext) -> None:
    alice = await add_subscribers(context, 60, prefix="alice")
    await add_subscribers(context, 5, prefix="bob")
    client = await _logged_in(browser, "vera")
    first = await client.get("/admin/subscribers", params={"q": "  ALICE "})
    rows = _listed(first)
    assert [i for i, _ in rows] == sorted(alice, reverse=True)[:50]
    assert all(email.startswith("alice") for _, email in rows)
    older = f'href="/admin/subscribers?q=alice&amp;before={rows[-1][0]}"'
    assert older in first.text and 'value="alice"' in first.text
    second = _listed(await client.get("/admin/subscribers", params={"q": "alice", "before": rows[-1][0]}))
    assert [i for i, _ in second] == sorted(alice, reverse=True)[50:]
    bob = _listed(await client.get("/admin/subscribers", params={"q": "bob"}))
    assert len(bob) == 5 and all(email.startswith("bob") for _, email in bob)
    # "alice1" is a prefix: alice1@, alice10@ … alice19@ (the factory numbers from 1).
    narrow = {email for _, email in _listed(await client.get("/admin/subscribers?q=alice1"))}
    assert narrow == {f"alice{n}@readers.example" for n in [1, *range(10, 20)]}
    assert _listed(await client.get("/admin/subscribers?q=nobody")) == []
    # Not a LIKE pattern: % and _ are searched as themselves.
    assert _listed(await client.get("/admin/subscribers", params={"q": "%"})) == []
    assert _listed(await client.get("/admin/subscribers", params={"q": "alic_"})) == []


async def test_a_common_prefix_is_searched_a_window_at_a_time(
    browser: Client, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "FEW_MATCHES", 3)
    monkeypatch.setattr(queries, "WINDOW", 10)
    waiting = await add_subscribers(context, 2, prefix="dave", status="pending")
    carol = await add_subscribers(context, 5, prefix="carol")
    dave = await add_subscribers(context, 15, prefix="dave")
    client = await _logged_in(browser, "vera")
    top = await client.get("/admin/subscribers?q=carol")
    assert _listed(top) == [] and "searched the subscribers down to" in top.text
    floor = max(dave) + 1 - 10
    assert f'href="/admin/subscribers?q=carol&amp;before={floor}"' in top.text
    found = _listed(await client.get(f"/admin/subscribers?q=carol&before={floor}"))
    assert [i for i, _ in found] == sorted(carol, reverse=True)
    # A common prefix with a rare status: read through the status, every match at once.
    pending = await client.get("/admin/subscribers?q=dave&status=pending")
    assert [i for i, _ in _listed(pending)] == sorted(waiting, reverse=True)
    assert "searched the subscribers down to" not in pending.text


async def test_status_filter(browser: Client, context: AppContext) -> None:
    active = await add_subscribers(context, 3, prefix="act")
    gone = await add_subscribers(context, 2, prefix="gone", status="unsubscribed")
    erased = await add_subscribers(context, 1, prefix="erased", status="erased")
    client = await _logged_in(browser, "vera")
    everyone = {i for i, _ in _listed(await client.get("/admin/subscribers"))}
    assert everyone == set(active + gone)  # erased only when asked for
    only = _listed(await client.get("/admin/subscribers?status=unsubscribed"))
    assert [i for i, _ in only] == sorted(gone, reverse=True)
    assert [i for i, _ in _listed(await client.get("/admin/subscribers?status=erased"))] == erased
    both = _listed(await client.get("/admin/subscribers?q=go&status=unsubscribed"))
    assert [i for i, _ in both] == sorted(gone, reverse=True)
    assert _listed(await client.get("/admin/subscribers?q=act&status=unsubscribed")) == []


async def test_bad_filters_name_the_field(browser: Client, context: AppContext) -> None:
    await add_subscribers(context, 2)
    client = await _logged_in(browser, "vera")
    bad = await client.get("/admin/subscribers?status=gone")
    assert bad.status_code == 422 and "status: must be one of" in bad.text
    assert ROW.findall(bad.text) == [] and "gone" not in bad.text
    assert (await client.get("/admin/subscribers", params={"q": "a\nb"})).status_code == 422
    assert (await client.get("/admin/subscribers?before=0")).status_code == 422


async def test_pages_need_a_login(browser: Client, context: AppContext) -> None:
    (subscriber_id,) = await add_subscribers(context, 1)
    client = browser()
    for path in ("/admin/subscribers", f"/admin/subscribers/{subscriber_id}"):
        answer = await client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")


async def test_detail_shows_subscriptions_consent_deliveries_and_bounces(
    browser: Client, context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition = await edition_for(2, sections=["World", "Energy"])
    await drain(context, editions={edition.id})
    reader = await _subscriber(context, "reader1@readers.example")
    assert reader is not None
    browser_actor = Actor.web("198.51.100.4", "Mozilla/5.0 (TestBrowser)")
    async with context.db.session() as session:
        audit.record(session, audit.SIGNUP, reader.id, browser_actor, newsletter_id="daily")
        audit.record(session, audit.CONFIRM, reader.id, browser_actor, newsletter_id="daily")
        session.add(
            BounceEvent(
                source="receiver",
                kind="soft",
                event_key="test-bounce-1",
                recipient=reader.email,
                status="4.2.2",
                diagnostic="452 4.2.2 Mailbox full",
                outcome="counted",
                subscriber_id=reader.id,
                edition_id=edition.id,
            )
        )
        await session.commit()
    client = await _logged_in(browser, "vera")
    page = await client.get(f"/admin/subscribers/{reader.id}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>reader1@readers.example" in text and "The Daily Briefing" in text
    assert "Energy, World" in text  # the sections chosen
    consent = text.split('id="consent-heading"', 1)[1].split("</table>", 1)[0]
    assert "<td>signup</td>" in consent and "<td>confirm</td>" in consent
    assert "198.51.100.4" in consent and "Mozilla/5.0 (TestBrowser)" in consent
    deliveries = text.split('id="deliveries-heading"', 1)[1].split("</table>", 1)[0]
    assert f'href="/admin/editions/{edition.id}"' in deliveries and ">sent<" in deliveries
    assert re.search(r"<td class=\"reply\">250 ", deliveries)
    bounces = text.split('id="bounces-heading"', 1)[1].split("</table>", 1)[0]
    assert "452 4.2.2 Mailbox full" in bounces and "<td>soft</td>" in bounces
    assert "/erase" not in text  # a viewer is offered no erasure
    assert (await client.get("/admin/subscribers/999999")).status_code == 404
    assert (await client.get("/admin/subscribers/0")).status_code == 422


async def test_add_is_for_owners_with_the_forms_token(browser: Client, context: AppContext) -> None:
    owner, editor, viewer = [await _logged_in(browser, n) for n in ("olivia", "eddie", "vera")]
    for client in (editor, viewer):
        page = await client.get("/admin/subscribers")
        assert page.status_code == 200 and "Add subscriber" not in page.text and "/export" not in page.text
        data = {"csrf": csrf_of(page), "email": "new@readers.example"}
        assert (await client.post("/admin/subscribers", data=data)).status_code == 403
    page = await owner.get("/admin/subscribers")
    assert "Add subscriber" in page.text
    for data in ({}, {"csrf": "0" * 64}):
        refused = await owner.post("/admin/subscribers", data={**data, "email": "new@readers.example"})
        assert refused.status_code == 403
    assert await _count(context) == 0
    data = {"csrf": csrf_of(page), "email": "New@Readers.example", "newsletters": "daily"}
    added = await owner.post("/admin/subscribers", data=data)
    assert added.status_code == 303
    stored = await _subscriber(context, "new@readers.example")
    assert stored is not None and stored.status == "pending" and stored.source == "console"
    assert added.headers["location"] == f"/admin/subscribers/{stored.id}?done=added"
    shown = await owner.get(added.headers["location"])
    assert "Added." in shown.text and "New@readers.example" in shown.text
    async with context.db.session() as session:
        event = await session.scalar(select(Event).where(Event.subscriber_id == stored.id))
    assert event is not None and event.ip == "203.0.113.7" and '"source": "console"' in (event.detail or "")
    added_entries = [a for a in await audit_actions(context) if a[1] == "subscriber.add"]
    assert added_entries == [("olivia", "subscriber.add", f"subscriber {stored.id}")]
    (detail,) = await _audit_details(context, "subscriber.add")
    assert "added" in detail and "daily" in detail and "readers.example" not in detail.lower()


async def test_add_confirmed_and_bad_input(browser: Client, context: AppContext) -> None:
    owner = await _logged_in(browser, "olivia")
    token = csrf_of(await owner.get("/admin/subscribers"))
    data = {"csrf": token, "email": "sure@readers.example", "confirmed": "yes"}
    assert (await owner.post("/admin/subscribers", data=data)).status_code == 303
    stored = await _subscriber(context, "sure@readers.example")
    assert stored is not None and stored.status == "active"
    bad = await owner.post("/admin/subscribers", data={"csrf": token, "email": "not an address"})
    assert bad.status_code == 422 and "email: not a valid email address" in bad.text
    assert 'value="not an address"' in bad.text  # the form again, as sent
    unknown = {"csrf": token, "email": "x@readers.example", "newsletters": "weekly"}
    answer = await owner.post("/admin/subscribers", data=unknown)
    assert answer.status_code == 422 and "newsletters[0]: unknown newsletter" in answer.text
    assert await _count(context) == 1
    assert [a[1] for a in await audit_actions(context)].count("subscriber.add") == 1


async def test_add_refuses_a_reader_who_unsubscribed(browser: Client, context: AppContext) -> None:
    (gone,) = await add_subscribers(context, 1, prefix="left", status="unsubscribed")
    owner = await _logged_in(browser, "olivia")
    token = csrf_of(await owner.get("/admin/subscribers"))
    answer = await owner.post(
        "/admin/subscribers", data={"csrf": token, "email": f"left{gone}@readers.example"}
    )
    assert answer.status_code == 409 and "email: refused: unsubscribed" in answer.text
    stored = await _subscriber(context, f"left{gone}@readers.example")
    assert stored is not None and stored.status == "unsubscribed"
    assert "subscriber.add" not in [a[1] for a in await audit_actions(context)]


async def test_erase_asks_for_confirmation_then_forgets_the_address(
    browser: Client, context: AppContext
) -> None:
    (reader,) = await add_subscribers(context, 1, prefix="forget")
    email = f"forget{reader}@readers.example"
    owner, editor = await _logged_in(browser, "olivia"), await _logged_in(browser, "eddie")
    assert "/erase" not in (await editor.get(f"/admin/subscribers/{reader}")).text
    assert (await editor.get(f"/admin/subscribers/{reader}/erase")).status_code == 403
    token = csrf_of(await editor.get("/admin/subscribers"))
    data = {"csrf": token, "confirm": "yes"}
    assert (await editor.post(f"/admin/subscribers/{reader}/erase", data=data)).status_code == 403
    detail = await owner.get(f"/admin/subscribers/{reader}")
    assert f'href="/admin/subscribers/{reader}/erase"' in detail.text
    confirm = await owner.get(f"/admin/subscribers/{reader}/erase")
    assert (
        confirm.status_code == 200
        and f"Erase {email}?" in confirm.text
        and "cannot be undone" in confirm.text
    )
    token = csrf_of(confirm)
    unconfirmed = await owner.post(f"/admin/subscribers/{reader}/erase", data={"csrf": token})
    assert unconfirmed.status_code == 422 and "confirm: tick the box" in unconfirmed.text
    forged = await owner.post(f"/admin/subscribers/{reader}/erase", data={"confirm": "yes"})
    assert forged.status_code == 403
    assert await _subscriber(context, email) is not None
    erased = await owner.post(f"/admin/subscribers/{reader}/erase", data={"csrf": token, "confirm": "yes"})
    assert (
        erased.status_code == 303 and erased.headers["location"] == f"/admin/subscribers/{reader}?done=erased"
    )
    assert await _subscriber(context, email) is None
    after = await owner.get(erased.headers["location"])
    assert after.status_code == 200 and "Erased:" in after.text and email not in after.text
    assert "Erased subscriber" in after.text
    assert (await owner.get(f"/admin/subscribers/{reader}/erase")).status_code == 404
    again = await owner.post(f"/admin/subscribers/{reader}/erase", data={"csrf": token, "confirm": "yes"})
    assert again.status_code == 404
    assert ("olivia", "subscriber.erase", f"subscriber {reader}") in await audit_actions(context)
    async with context.db.session() as session:
        trail = (await session.execute(select(AuditEvent.target, AuditEvent.detail))).all()
    assert not any("forget" in f"{target} {detail}" for target, detail in trail)
    assert [a[1] for a in await audit_actions(context)].count("subscriber.erase") == 1


def _upload(text: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("readers.csv", text.encode(), "text/csv")}


async def _imported(client: httpx.AsyncClient, data: dict[str, str], files: Any = None) -> httpx.Response:
    """Post an import and follow it to its end (its progress stream ends with it): its page."""
    started = await client.post("/admin/subscribers/import", data=data, files=files)
    if started.status_code != 303:
        return started
    job = started.headers["location"]
    assert job.startswith("/admin/subscribers/import/")
    stream = await client.get(job + "/progress")
    assert stream.status_code == 200 and re.search(r'"phase": "(done|failed)"', stream.text), stream.text
    return await client.get(job)


CSV_WITH_A_BAD_ROW = (
    "email,newsletters,status\n"
    "first@readers.example,daily,active\n"
    "not-an-address,daily,\n"
    "second@readers.example,,\n"
)


async def test_import_adds_the_good_rows_and_reports_the_bad(browser: Client, context: AppContext) -> None:
    owner, editor = await _logged_in(browser, "olivia"), await _logged_in(browser, "eddie")
    token = csrf_of(await editor.get("/admin/subscribers"))
    refused = await editor.post(
        "/admin/subscribers/import", data={"csrf": token}, files=_upload(CSV_WITH_A_BAD_ROW)
    )
    assert refused.status_code == 403
    assert (await editor.get("/admin/subscribers/import")).status_code == 403
    form = await owner.get("/admin/subscribers/import")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    forged = await owner.post(
        "/admin/subscribers/import", data={"skip_invalid": "yes"}, files=_upload(CSV_WITH_A_BAD_ROW)
    )
    assert forged.status_code == 403 and await _count(context) == 0
    token = csrf_of(form)
    whole = await _imported(owner, {"csrf": token}, _upload(CSV_WITH_A_BAD_ROW))
    assert whole.status_code == 422 and "Nothing imported" in whole.text and await _count(context) == 0
    data = {"csrf": token, "skip_invalid": "yes"}
    answer = await _imported(owner, data, _upload(CSV_WITH_A_BAD_ROW))
    assert answer.status_code == 200 and "Imported." in answer.text
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", answer.text))
    assert figures["Rows"] == "3" and figures["Added"] == "2" and figures["Invalid"] == "1"
    problems = answer.text.split("Rows not imported", 1)[1].split("</table>", 1)[0]
    assert re.search(r'<td class="num">3</td><td>email</td><td>not a valid email address', problems)
    first, second = [await _subscriber(context, f"{n}@readers.example") for n in ("first", "second")]
    assert first is not None and first.status == "active" and first.source == "import"
    assert second is not None and second.status == "pending"
    assert await _count(context) == 2
    assert ("olivia", "subscriber.import", "subscribers") in await audit_actions(context)
    details = await _audit_details(context, "subscriber.import")
    assert details == [
        "rows 3: added 0, updated 0, invalid 1, suppressed 0 (nothing imported)",
        "rows 3: added 2, updated 0, invalid 1, suppressed 0",
    ]


async def test_import_refuses_a_file_it_cannot_read(browser: Client, context: AppContext) -> None:
    owner = await _logged_in(browser, "olivia")
    token = csrf_of(await owner.get("/admin/subscribers/import"))
    unknown = await _imported(owner, {"csrf": token}, _upload("mail,name\nx@readers.example,X\n"))
    assert unknown.status_code == 422 and "file line 1: unknown column" in unknown.text
    none = await _imported(owner, {"csrf": token})
    assert none.status_code == 422 and "file: choose a CSV file" in none.text
    assert await _count(context) == 0
    assert "subscriber.import" not in [a[1] for a in await audit_actions(context)]


async def test_export_is_a_csv_download_for_owners(browser: Client, context: AppContext) -> None:
    active = await add_subscribers(context, 3, prefix="keep")
    gone = await add_subscribers(context, 1, prefix="gone", status="unsubscribed")
    owner, editor = await _logged_in(browser, "olivia"), await _logged_in(browser, "eddie")
    assert (await editor.get("/admin/subscribers/export")).status_code == 403
    answer = await owner.get("/admin/subscribers/export")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "subscribers-all-" in disposition
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    expected = {f"keep{n}@readers.example" for n in active} | {f"gone{n}@readers.example" for n in gone}
    assert {r["email"] for r in rows} == expected and {r["newsletters"] for r in rows} == {"daily"}
    only = await owner.get("/admin/subscribers/export?status=unsubscribed")
    assert [r["email"] for r in csv.DictReader(io.StringIO(only.text))] == [f"gone{gone[0]}@readers.example"]
    bad = await owner.get("/admin/subscribers/export?status=everyone")
    assert bad.status_code == 422 and "status: must be one of" in bad.text
    assert [a for a in await audit_actions(context) if a[1] == "subscriber.export"] == [
        ("olivia", "subscriber.export", "subscribers")
    ] * 2
    assert await _audit_details(context, "subscriber.export") == [
        "4 subscribers; status any",
        "1 subscribers; status unsubscribed",
    ]


def test_describe_reads_an_events_detail() -> None:
    assert queries.describe('{"source": "console", "newsletters": {"daily": [], "weekly": ["World"]}}') == (
        "source: console; newsletters: daily, weekly (World)"
    )
    assert queries.describe(None) == "" and queries.describe("not json") == "not json"


async def test_an_erased_readers_old_deliveries_stay_without_the_address(
    browser: Client, context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition = await edition_for(1)
    await drain(context, editions={edition.id})
    reader = await _subscriber(context, "reader1@readers.example")
    assert reader is not None
    owner = await _logged_in(browser, "olivia")
    token = csrf_of(await owner.get(f"/admin/subscribers/{reader.id}/erase"))
    await owner.post(f"/admin/subscribers/{reader.id}/erase", data={"csrf": token, "confirm": "yes"})
    page = await owner.get(f"/admin/subscribers/{reader.id}")
    assert f'href="/admin/editions/{edition.id}"' in page.text and "reader1@" not in page.text


class _Markup(HTMLParser):
    """What the accessibility check needs of a page: headings, table cells, fields and labels."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, dict[str, str]]] = []
        self.h1 = 0
        self.problems: list[str] = []
        self.labelled: set[str] = set()
        self.fields: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.h1 += tag == "h1"
        if tag == "th" and "scope" not in found:
            self.problems.append("a th without scope")
        if tag == "table" and not (self.open and "table-wrap" in self.open[-1][1].get("class", "")):
            self.problems.append("a table outside div.table-wrap")
        if tag == "label" and "for" in found:
            self.labelled.add(found["for"])
        if tag in ("input", "select") and found.get("type") not in ("hidden", "submit"):
            inside_label = any(name == "label" for name, _ in self.open)
            if not inside_label:
                self.fields.append(found.get("id", f"{tag} {found.get('name')} without an id"))
        if tag not in ("input", "meta", "link", "br", "img"):
            self.open.append((tag, found))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass


def _accessible(page: httpx.Response) -> None:
    markup = _Markup()
    markup.feed(page.text)
    assert markup.h1 == 1, "one h1 a page"
    assert markup.problems == []
    assert [f for f in markup.fields if f not in markup.labelled] == [], "fields without a label"


async def test_pages_are_labelled_and_their_tables_scroll(
    browser: Client, context: AppContext, edition_for: Callable[..., Awaitable[Edition]]
) -> None:
    edition = await edition_for(2)
    await drain(context, editions={edition.id})
    reader = await _subscriber(context, "reader1@readers.example")
    assert reader is not None
    owner = await _logged_in(browser, "olivia")
    token = csrf_of(await owner.get("/admin/subscribers"))
    report = await _imported(owner, {"csrf": token, "skip_invalid": "yes"}, _upload(CSV_WITH_A_BAD_ROW))
    pages = [
        await owner.get("/admin/subscribers"),
        await owner.get("/admin/subscribers?status=nonsense"),
        await owner.get(f"/admin/subscribers/{reader.id}"),
        await owner.get(f"/admin/subscribers/{reader.id}/erase"),
        await owner.get("/admin/subscribers/import"),
        report,
    ]
    for page in pages:
        assert 'aria-current="page">Subscribers' in page.text
        _accessible(page)


async def test_a_big_file_imports_in_the_background_for_its_owner_only(
    browser: Client, context: AppContext
) -> None:
    rows = "".join(f"reader{n:05d}@big.example,daily,active\n" for n in range(3000))
    big = "email,newsletters,status\n" + rows
    assert len(big.encode()) > 64 * 1024  # past the pages' 16 KiB body limit
    owner = await _logged_in(browser, "olivia")
    token = csrf_of(await owner.get("/admin/subscribers/import"))
    started = await owner.post("/admin/subscribers/import", data={"csrf": token}, files=_upload(big))
    assert started.status_code == 303
    job = started.headers["location"]
    elsewhere = await _logged_in(browser, "olivia")  # the same account in another browser sees it
    assert (await elsewhere.get(job)).status_code == 200
    await accounts.add(context, "otto", PASSWORD, Role.OWNER)  # another owner does not
    assert (await (await _logged_in(browser, "otto")).get(job)).status_code == 404
    stream = await owner.get(job + "/progress")
    states = [json.loads(line[5:]) for line in stream.text.splitlines() if line.startswith("data:")]
    assert states[-1] == {"phase": "done", "done": 3000, "total": 3000, "share": 1.0}
    page = await owner.get(job)
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([\d,]+)</dd>", page.text))
    assert figures["Rows"] == "3,000" and figures["Added"] == "3,000"
    assert await _count(context) == 3000
    assert (await owner.get("/admin/subscribers/import/not-a-job")).status_code == 404
